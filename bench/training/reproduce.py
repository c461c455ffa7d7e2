"""Paper reproduction: train every model with its paper's recipe over several
seeds and set each measurement beside the paper's claim.

Two experiments are run:

* ``paper``: each model with the recipe of the requested profile (normally
  ``paper``), one run per seed. A recipe that is infeasible on a CPU (fan-resnet's
  30 epochs, about two days on 2 cores; the spec's ``extra["cpu_infeasible"]``)
  runs its ``quick`` recipe instead when training on a CPU, and every such row
  says so in ``reduced``.
* ``ae-scale``: the dense and the convolutional autoencoders of Zhu (seed 004)
  trained at the same settings (the conv autoencoder's recipe) on both input
  scales, [0, 1] and [-1, 1], so the paper's reconstruction losses (0.1129 conv
  against 0.1398 dense) can be read against both. The output activation follows
  the scale (sigmoid for [0, 1], tanh for [-1, 1]) so that each model can reach
  every target value.

Every finished run is appended at once to a CSV (one row per run, columns
:data:`RUN_FIELDS`), so an interrupted reproduction keeps its runs and
``--resume`` trains only the missing ones. The summary (mean, sample standard
deviation, min, max over seeds, and a verdict against the claim) is computed
from that CSV; several CSVs (MNIST and Fashion-MNIST, say) merge into one table.

The parts live in four modules, gathered here under their historical names: :mod:`.repro_plan`
(the runs and their order), :mod:`.repro_execute` (training one run into its row),
:mod:`.repro_csv` (the runs CSV) and :mod:`.repro_report` (statistics, verdicts, markdown).
"""

from __future__ import annotations

from .repro_csv import ADDED_RUN_FIELDS, RUN_FIELDS, error_row, is_ok, read_runs, run_key, runs_csv
from .repro_execute import _final_and_best, _Reconstructor, ae_spec, execute, run_all
from .repro_plan import AE_MODELS, AE_SCALES, PlannedRun, plan, plan_order
from .repro_report import (
    SD_BAND,
    ReproRow,
    Summary,
    _claim_text,
    _diff,
    _digits,
    _length,
    _md,
    _sd,
    ae_scale_rows,
    markdown,
    reproduction_rows,
    summarize,
    table_i_rows,
    verdict,
    write_markdown,
)

__all__ = [
    # .repro_plan
    "AE_SCALES", "AE_MODELS", "PlannedRun", "plan", "plan_order",
    # .repro_execute
    "_Reconstructor", "ae_spec", "_final_and_best", "execute", "run_all",
    # .repro_csv
    "RUN_FIELDS", "ADDED_RUN_FIELDS", "error_row", "is_ok", "run_key", "runs_csv", "read_runs",
    # .repro_report
    "SD_BAND", "Summary", "_sd", "summarize", "_digits", "verdict", "_diff", "_claim_text", "_length", "ReproRow",
    "reproduction_rows", "table_i_rows", "ae_scale_rows", "markdown", "_md", "write_markdown",
]
