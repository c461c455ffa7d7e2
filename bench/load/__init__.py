"""Latency under load: MLPerf LoadGen's scenarios served by a pool of workers with a dynamic
batcher (``mnistbench load``). :mod:`.config` (the request), :mod:`.sut` (workers and batcher),
:mod:`.loadgen` (LoadGen itself and its logs), :mod:`.scenarios` (a test, a peak search, the
accuracy run), :mod:`.runner` (the cells and rows), :mod:`.rows` (the load CSV)."""
