"""The reproducible neighbour: seeded schedules, real load on the chosen CPUs, a clean stop."""

from __future__ import annotations

import math
import time

import psutil
import pytest
from mnistbench.bench.analysis import noise
from mnistbench.models.errors import UsageError


def test_schedules_are_seeded_bounded_and_alternate():
    a = noise.schedule("bursty", seed=7, worker=0, total_s=120)
    assert a == noise.schedule("bursty", seed=7, worker=0, total_s=120)  # the seed fixes it everywhere
    assert a != noise.schedule("bursty", seed=8, worker=0, total_s=120)
    assert a != noise.schedule("bursty", seed=7, worker=1, total_s=120)  # workers burst independently
    assert sum(b.seconds for b in a) >= 120
    assert all(noise.MIN_PERIOD_S <= b.seconds <= noise.MAX_PERIOD_S for b in a)
    idle = [b.kind == "idle" for b in a]
    assert all(x != y for x, y in zip(idle, idle[1:]))  # on and off in turn
    busy_kinds = {b.kind for b in a if b.kind != "idle"}
    assert busy_kinds == {"cpu", "memory"}
    # log-uniform periods: about as many below 1 s as above (the log-midpoint of 0.1 s and 10 s)
    long = noise.schedule("bursty", seed=1, worker=0, total_s=20_000)
    below = sum(b.seconds < 1.0 for b in long) / len(long)
    assert 0.4 < below < 0.6, below
    busy = noise.schedule("busy", seed=7, worker=0, total_s=60)
    assert busy and all(b.kind != "idle" for b in busy)
    assert noise.schedule("quiet", 1, 0, 60) == [] and noise.schedule("as-is", 1, 0, 60) == []
    with pytest.raises(UsageError, match="noise condition"):
        noise.schedule("loud", 1, 0, 60)


def test_a_busy_neighbour_really_loads_its_cpus_and_stops():
    n = noise.Neighbour("busy", seed=3, cpus=(0,))
    with n:
        procs = [psutil.Process(p.pid) for p in n._procs]
        assert len(procs) == 1
        time.sleep(2.0)
        used = sum(p.cpu_times().user + p.cpu_times().system for p in procs)
        assert procs[0].cpu_affinity() == [0]
    assert used > 0.5, used  # busy for most of the 2 s (spawning the interpreter takes some of it)
    assert all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in procs)
    assert n.describe() == {"condition": "busy", "seed": 3, "cpus": [0], "period_s": [0.1, 10.0],
                            "memory_mb": noise.MEMORY_MB, "workers": 1}


def test_quiet_and_as_is_start_nothing():
    for c in ("quiet", "as-is"):
        with noise.Neighbour(c) as n:
            assert n._procs == [] and n.describe()["workers"] == 0
    with pytest.raises(UsageError, match="noise condition"):
        noise.Neighbour("loud")
    assert math.isclose(noise.MIN_PERIOD_S, 0.1) and math.isclose(noise.MAX_PERIOD_S, 10.0)
