"""What results mean: separate-run comparisons and their verdicts (:mod:`.compare`), the live
sequential A/B (:mod:`.live`, :mod:`.sequential`), the best configuration (:mod:`.best`), reports
(:mod:`.report`, :mod:`.htmlreport`), result checks (:mod:`.verify`), the machine's own figures
(:mod:`.diagnostics`, :mod:`.doctor`), reproducible neighbour noise (:mod:`.noise`) and the calibration
of the verdicts (:mod:`.calibrate`). Above measurement; beside the launchers, never importing them."""
