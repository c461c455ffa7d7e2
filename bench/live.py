"""Live A/B: two models measured in one process, blocks alternating, ratio with a paired interval.

Both sessions are built, warmed up and kept alive; :func:`bench.runner.run_matrix` then measures
them in rounds, each round one block of each in a random order, on the same input images. Block i
of A and block i of B share round i, so the bootstrap resamples whole rounds (paired): drift
between rounds cancels in the ratio. On a shared machine this is the most sensitive comparison
mnistbench offers: the calibration study (results/calibration/) flags a planted 3% slowdown with
it, where two separate runs need about 10%.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from mnistbench.bench.compare import LIVE_NOISE, Change, ResultSet, judge, key
from mnistbench.bench import samples as samples_io
from mnistbench.bench.foreign import foreign_inputs, inspect
from mnistbench.bench.pipeline import Artifacts, eval_inputs, onnx_for, torch_builder
from mnistbench.bench.runner import AUTO, Axes, Target, auto_threads_fixed, run_matrix
from mnistbench.bench.timing import TimingConfig
from mnistbench.models.data import Dataset
from mnistbench.models.errors import UsageError
from mnistbench.models.registry import get_spec

LIVE_ROUNDS = 20  # blocks per side and batch size (calibration study)
LIVE_MIN_S = 2.0  # timed seconds per side and batch size: 20 blocks of 0.1 s


@dataclass(frozen=True)
class LiveResult:
    """The A/B comparison: one :class:`bench.compare.Change` per batch size (base = A, new = B)."""

    a: str
    b: str
    changes: list[Change]
    csv: Path


def live_target(spec_text: str, data: Dataset, arts: Artifacts, preprocess: str = "unit") -> Target:
    """A side of a live comparison: a path to an ``.onnx`` file, or ``MODEL[:VARIANT]`` of a registered
    model whose export exists in ``arts``.

    Raises:
        UsageError: unknown model or variant, missing export, or an ONNX file that is not an MNIST classifier.
    """
    if spec_text.endswith(".onnx") or Path(spec_text).is_file():
        fm = inspect(Path(spec_text))
        return Target(fm.path.stem, fm.path, "classify", foreign_inputs(data.test_images, fm, preprocess),
                      data.test_labels.astype("int64"), None, None, arts.dataset, "foreign", "",
                      fixed_batch=fm.fixed_batch, variant="foreign")
    name, _, variant = spec_text.partition(":")
    spec = get_spec(name)
    path, meta = onnx_for(spec, arts, variant or "fp32")
    x, y = eval_inputs(spec, data)
    return Target(spec.name, path, spec.task, x, y, torch_builder(spec, arts), spec.flops, arts.dataset,
                  meta.get("profile", arts.profile), meta.get("seed", str(arts.seed)), meta.get("checkpoint_sha256", ""),
                  variant=variant or "fp32")


def live_compare(a: Target, b: Target, axes: Axes, out_csv: Path,
                 timing: TimingConfig = TimingConfig(min_s=LIVE_MIN_S, rounds=LIVE_ROUNDS),
                 noise: float = LIVE_NOISE, progress=None) -> LiveResult:
    """Measure ``a`` and ``b`` interleaved in this process and judge b / a per batch size.

    The rows and samples are written to ``out_csv`` (a new file) like any run's. Sides with the same
    name and variant are renamed ``A:<name>`` and ``B:<name>`` so that their rows stay apart. A
    threads value of ``auto`` becomes the count that ``auto`` always picks on this host when it has a
    single candidate (1 on a 2-CPU host, :func:`bench.runner.thread_candidates`), else 0 (the
    runtime's own choice), so that both sides run alike.

    Raises:
        UsageError: the two sides accept no common batch size.
    """
    if (a.name, a.variant) == (b.name, b.variant):
        a, b = replace(a, name=f"A:{a.name}"), replace(b, name=f"B:{b.name}")
    if AUTO in axes.threads:  # a per-cell probe could give the two sides different thread counts
        axes = replace(axes, threads=tuple(dict.fromkeys((auto_threads_fixed() or 0) if t == AUTO else t for t in axes.threads)))
    if a.fixed_batch and b.fixed_batch and a.fixed_batch != b.fixed_batch:
        raise UsageError(f"{a.name} runs only at batch {a.fixed_batch} and {b.name} only at {b.fixed_batch}")
    rows = run_matrix([a, b], axes, out_csv, timing=timing, score=False, progress=progress)
    rs = ResultSet("live", rows, samples_io.load(out_csv), [])
    errors = [r for r in rows if r.status != "ok"]
    if errors:
        raise UsageError(f"{errors[0].model} could not be measured: {errors[0].error}")
    changes = []
    side_a = {key(r)[2:]: r for r in rows if r.model == a.name}
    for r in rows:
        if r.model == b.name and key(r)[2:] in side_a:
            ra = side_a[key(r)[2:]]
            k = (f"{a.name} -> {b.name}", f"{ra.variant} -> {r.variant}", *key(r)[2:])
            changes.append(judge(k, [ra], [r], rs, rs, noise, refs=None, paired=True))
    return LiveResult(a.name, b.name, changes, out_csv)
