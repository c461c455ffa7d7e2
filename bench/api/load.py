"""``mnistbench load`` as a function: MLPerf LoadGen scenarios served by workers with a dynamic batcher."""

from __future__ import annotations

import sys
from typing import Callable

from ..load.config import LoadRequest, parse_qps_range
from ..load.rows import LoadRecord, read_load_csv
from ..load.runner import LoadOutcome, execute

__all__ = ["LoadOutcome", "LoadRecord", "LoadRequest", "load", "parse_qps_range", "read_load_csv"]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def load(req: LoadRequest, progress: Callable[[str], None] | None = None,
         note: Callable[[str], None] = _stderr) -> LoadOutcome:
    """Serve ``req``'s models to LoadGen (see :mod:`bench.load.runner`) and write the load CSV.

    Returns:
        the :class:`LoadOutcome`: rows (:class:`LoadRecord`), the CSV and its system JSON.

    Raises:
        UsageError: LoadGen not installed, or unusable input (checked before any test);
        ProviderUnavailableError; KeyboardInterrupt (rows already written are kept).

    Example::

        from mnistbench import api
        out = api.load(api.LoadRequest(("lenet5",), scenario="server", find_peak=True, max_batch=16,
                                       max_queue_delay_ms=1.0, min_duration_s=5, out_path="runs/load.csv"))
        print([(r.model, r.kind, r.peak_qps) for r in out.rows])
    """
    return execute(req, progress or (lambda s: None), note)
