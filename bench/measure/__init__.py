"""Measurement: the interleaved runner (:mod:`.runner`), the timing loop (:mod:`.timing`),
statistics (:mod:`.metrics`), raw samples (:mod:`.samples`), result rows (:mod:`.records`), system facts
(:mod:`.system`), the host's noise profile (:mod:`.noiseprofile`), model artifacts (:mod:`.pipeline`),
option values (:mod:`.inputs`) and the defaults (:mod:`.defaults`). Above the runtimes."""
