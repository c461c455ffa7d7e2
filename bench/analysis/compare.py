"""Compare results: join rows on their configuration, decide whether latency changed, gate on it.

Rows of a BASE and a NEW result set (CSV files, or folders of them) are joined on :data:`KEY`
(model, variant, runtime, provider, batch size, threads requested, spinning, io mode, dataset).
Repeats of one configuration are pooled: their blocks form one block set. For each pair:

- p50, p99, throughput and accuracy side by side, with ratios (new / base);
- the latency ratio judged is that of the *typical block p50*: the 25th percentile of a cell's block
  medians (:data:`bench.metrics.TYPICAL_BLOCK_QUANTILE`), robust to the minority of blocks that a
  burst of load slows down; its 95% interval comes from a percentile bootstrap over each side's
  blocks (:class:`bench.metrics.BlockSet`): blocks are the unit of evidence, not calls, because calls
  within a block are autocorrelated and separate runs drift (Kalibera and Jones, ISMM 2013);
- between-run uncertainty: blocks inside one run cannot see how far the machine moved *between*
  the two runs, so the interval is widened by a between-run spread ``sigma_b`` (a standard deviation
  of ln ratio), added in quadrature to each side of the bootstrap interval in log space: the
  hierarchical variance of Kalibera and Jones (ISMM 2013), where the variance of a comparison of
  single runs holds the run-to-run component. ``sigma_b`` is the larger of the host's noise profile
  (:mod:`bench.noiseprofile`, measured by ``doctor --calibrate``; :data:`bench.noiseprofile.DEFAULT_SIGMA`
  without one) and the movement of the reference network(s) measured beside the cells in both runs
  (the root mean square of their ln ratios at that provider and batch size). When the widening
  turns a ``slower``/``faster`` into ``inconclusive``, :attr:`Change.reason` says by how much the
  machine moved;
- drift control: every run measures a fixed reference network (:func:`bench.pipeline.reference_model`)
  interleaved with its cells, and its ratio between the two runs is reported. Only with
  ``drift_correction`` (off by default, :data:`DRIFT_CORRECTION`), when the reference's interval
  excludes 1, is the verdict judged on the cell's ratio divided by the reference's (``normalised``);
- a verdict in the style of criterion.rs and Chromium Pinpoint, with a noise threshold ``noise``
  (default :data:`NOISE`): ``slower`` when the whole interval lies above ``1 + noise``,
  ``faster`` when it lies below ``1 - noise``, ``no change`` when it lies within
  ``[1 - noise, 1 + noise]``, otherwise ``inconclusive`` (measure more); ``n/a`` without samples.

Rows present on one side only are listed, never dropped. Rows of schema 4 and older have no
blocks: their calls are split into :data:`LEGACY_BLOCKS` contiguous pseudo-blocks, and the
change is marked ``weak`` (a burst of load can fill a pseudo-block).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...models.errors import UsageError
from ..measure import noiseprofile
from ..measure import samples as samples_io
from ..measure.metrics import BOOTSTRAP_SEED, MIN_BLOCKS_CI, BlockSet, percentile_ci
from ..measure.records import BenchmarkRecord, node_labels, read_csv, series_node
from ..measure.samples import CellSamples
from .gate import Rule, gate, parse_rules  # noqa: F401  (re-exported: the gate of compare's verdicts)

KEY = ("model", "variant", "runtime", "provider", "batch_size", "threads_requested", "spinning", "io_mode", "dataset")
# Noise thresholds (fractions of the p50): the calibration study (results/calibration/) chose them
# so that an A/A comparison of two separate runs, or of two sessions in one process (--live), is a
# false alarm at most 1 time in 20.
NOISE = 0.02
# Whether `compare` divides a cell's ratio by the reference network's when the reference moved. Off: in
# the calibration study (results/calibration/, separate runs on a CPU held by nothing else) the
# reference's ratio between two runs moved by up to 10% while the models' did not, and dividing by it
# made 0, 1 and 2 of 20 A/A pairs per configuration gate failures; the raw ratios made none.
DRIFT_CORRECTION = False
LIVE_NOISE = 0.01
Z95 = 1.959963984540054  # the standard normal's 0.975 quantile: the between-run term's 95% half-width
LEGACY_BLOCKS = 8
SYSTEM_FIELDS = ("cpu_model", "cpu_logical_cores", "cpu_physical_cores", "onnxruntime", "onnx", "torch",
                 "python", "os", "onnxruntime_available_providers", "gpus", "host")
VERDICTS = ("faster", "slower", "no change", "inconclusive", "n/a")


@dataclass
class ResultSet:
    """Rows of one or more CSVs, their raw samples by ``cell_id``, and their system descriptions.
    ``references`` are the rows of the reference network (kept apart from ``rows``)."""

    label: str
    rows: list[BenchmarkRecord]
    samples: dict[str, CellSamples]
    systems: list[dict]
    references: list[BenchmarkRecord] = None

    def __post_init__(self) -> None:
        if self.references is None:
            self.references = []


def load(path: Path) -> ResultSet:
    """A results CSV (with its samples and ``.system.json`` beside it), or a folder of them.

    Raises:
        UsageError: missing path, no CSV in a folder, a CSV that is not of this schema or has no
            measured row, or a damaged samples or system file.
    """
    if not path.exists():
        raise UsageError(f"{path} does not exist")
    csvs = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not csvs:
        raise UsageError(f"{path} holds no results CSV")
    rows, refs, smp, systems = [], [], {}, []
    for c in csvs:
        for r in read_csv(c):
            if r.status == "ok":
                (refs if r.task == "reference" else rows).append(r)
        smp.update(samples_io.load(c))
        sj = c.with_suffix(".system.json")
        if sj.exists() and not sj.is_file():
            raise UsageError(f"{sj} is not a file; move it away (the rows stay usable) or rerun")
        if sj.is_file():
            try:
                system = json.loads(sj.read_text())
            except (ValueError, RecursionError):  # bad JSON or UTF-8, an over-long integer, too deep
                raise UsageError(f"{sj} is not valid JSON; delete it (the rows stay usable) or rerun") from None
            except OSError as exc:
                raise UsageError(f"cannot read {sj}: {exc.strerror}") from None
            if not isinstance(system, dict):
                raise UsageError(f"{sj} is not a system JSON (an object of machine facts, here a "
                                 f"{type(system).__name__}); delete it (the rows stay usable) or rerun")
            systems.append(system)
    if not rows:
        raise UsageError(f"{path} has no measured rows to compare")
    return ResultSet(str(path), rows, smp, systems, refs)


def key(r: BenchmarkRecord, nodes: dict[str, str] | None = None) -> tuple:
    """The :data:`KEY` fields of ``r``; with ``nodes`` (node -> label, when both sides hold rows of the
    same several nodes) the row's node label after them, so that node pairs with node."""
    k = tuple(getattr(r, f) for f in KEY)
    return k + (nodes[series_node(r)],) if nodes else k


def node_pairing(base: ResultSet, new: ResultSet) -> dict[str, str] | None:
    """How the two sides' nodes pair (:func:`records.series_node`): one node each, compared with each
    other (two machines, or two runs of one): None; the same several nodes on both sides (two fleet
    runs): node -> label, each node compared with itself.

    Raises:
        UsageError: several nodes on a side, not the same as the other side's (their rows would be
            pooled across machines).
    """
    nb, nn = ({series_node(r) for r in rs.rows + rs.references} for rs in (base, new))
    if len(nb) == 1 and len(nn) == 1:
        return None
    labels = node_labels(base.rows + base.references + new.rows + new.references)
    if nb == nn:
        return labels
    name = lambda ns: ", ".join(sorted(labels[n] for n in ns))  # noqa: E731
    raise UsageError(f"{base.label} holds rows of {len(nb)} node(s) ({name(nb)}) and {new.label} of {len(nn)} "
                     f"({name(nn)}): rows of different machines would be pooled; compare one node's CSV with another "
                     "(a fleet run writes <run-id>/<node>.csv) or two fleet runs of the same nodes")


@dataclass(frozen=True)
class Change:
    """One configuration compared: figures, ratio intervals and verdict.

    ``ratio``/``ratio_low``/``ratio_high``: the ratio (new / base) of the typical block p50
    (:attr:`bench.metrics.BlockSet.typical_ms`) that the verdict rests on, and its 95% interval:
    drift-normalised when ``normalised``; NaN when a side has no samples.
    ``raw_*``: the same before normalisation.
    ``ref_*``: the reference network's ratio at this batch size (NaN without reference rows).
    ``weak``: a side has no interleaved blocks (schema 4 and older). ``threads_used``: the intra-op
    thread counts each side ran with (``auto`` may choose differently in two runs).
    ``between_sigma``: the between-run spread (sd of ln ratio) inside the interval (0 for a live A/B).
    ``reason``: why the verdict is what it is when the machine's movement decided it, else empty."""

    key: tuple
    base_p50_ms: float
    new_p50_ms: float
    base_p99_ms: float
    new_p99_ms: float
    base_ips: float
    new_ips: float
    base_acc: float
    new_acc: float
    ratio: float
    ratio_low: float
    ratio_high: float
    raw_low: float
    raw_high: float
    ref_ratio: float
    ref_low: float
    ref_high: float
    normalised: bool
    blocks: tuple[int, int]
    weak: bool
    verdict: str
    threads_used: tuple[str, str] = ("", "")
    between_sigma: float = 0.0
    reason: str = ""

    @property
    def p50_ratio(self) -> float:
        """The raw p50 ratio, new / base."""
        return self.new_p50_ms / self.base_p50_ms if self.base_p50_ms > 0 else math.nan

    @property
    def ips_ratio(self) -> float:
        """Throughput ratio, new / base, normalised like ``ratio`` (by the reference's p50 ratio)."""
        raw = self.new_ips / self.base_ips if self.base_ips > 0 else math.nan
        return raw * self.ref_ratio if self.normalised else raw

    @property
    def acc_delta_pp(self) -> float:
        return (self.new_acc - self.base_acc) * 100


def block_set(rs: list[BenchmarkRecord], smp: dict[str, CellSamples]) -> tuple[BlockSet | None, bool]:
    """The pooled blocks of rows ``rs`` (one configuration, any number of repeats) and whether any
    came from a row without interleaved blocks. None when no row has samples."""
    blocks, walls, rounds, weak = [], [], [], False
    for r in rs:
        s = smp.get(r.cell_id)
        if s is None:
            continue
        if s.blocked:
            blocks += s.blocks()
            walls += list(s.block_wall_ns)
            rounds += list(s.block_round)
        else:
            weak = True
            for part in np.array_split(s.ns, min(LEGACY_BLOCKS, len(s.ns))):
                blocks.append(part)
                walls.append(max(int(part.sum()), 1))
                rounds.append(0)
    if not blocks:
        return None, weak
    return BlockSet.from_blocks(blocks, walls, rounds, rs[0].batch_size), weak


def ratio_draws(base: BlockSet, new: BlockSet, rng: np.random.Generator, paired: bool = False) -> np.ndarray:
    """Bootstrap draws of typical(new) / typical(base), the typical block p50
    (:attr:`bench.metrics.BlockSet.typical_ms`). ``paired``: both sides were measured in the same
    rounds of one process, block i of each in round i; whole rounds are resampled together."""
    ib = base.draw(rng)
    inew = ib if paired and base.m == new.m else new.draw(rng)
    return new.typical_draws(inew) / base.typical_draws(ib)


def verdict(low: float, high: float, noise: float) -> str:
    """criterion-style verdict of a ratio interval [low, high] against the noise threshold."""
    if math.isnan(low) or math.isnan(high):
        return "n/a"
    if low > 1 + noise:
        return "slower"
    if high < 1 - noise:
        return "faster"
    if low >= 1 - noise and high <= 1 + noise:
        return "no change"
    return "inconclusive"


def _ref_index(refs: list[BenchmarkRecord], by_node: bool = False) -> dict[tuple, dict[str, list[BenchmarkRecord]]]:
    """Reference rows by (provider, batch size[, node]), then by reference model."""
    out: dict[tuple, dict[str, list[BenchmarkRecord]]] = defaultdict(lambda: defaultdict(list))
    for r in refs:
        out[(r.provider, r.batch_size) + ((series_node(r),) if by_node else ())][r.model].append(r)
    return out


def widen(ratio: float, low: float, high: float, sigma: float) -> tuple[float, float]:
    """The interval [low, high] around ``ratio`` with a between-run spread ``sigma`` (sd of ln ratio)
    added in quadrature on each side, in log space: ``ln high' = ln ratio + sqrt((ln high - ln
    ratio)^2 + (Z95 sigma)^2)``, likewise below. NaN in, NaN out."""
    if not all(v > 0 for v in (ratio, low, high)) or sigma <= 0:
        return low, high
    lr, w = math.log(ratio), Z95 * sigma
    return (math.exp(lr - math.hypot(lr - math.log(low), w)), math.exp(lr + math.hypot(math.log(high) - lr, w)))


def reference_movement(ratios: list[float]) -> float:
    """The root mean square of ln(ratio) over the reference networks' ratios between two runs (the
    machine's movement for workloads like them); NaN without a finite positive ratio."""
    logs = [math.log(r) for r in ratios if math.isfinite(r) and r > 0]
    return math.sqrt(sum(v * v for v in logs) / len(logs)) if logs else math.nan


def judge(key_: tuple, b: list[BenchmarkRecord], n: list[BenchmarkRecord], base: ResultSet, new: ResultSet,
          noise: float = NOISE, refs: tuple | None = None, paired: bool = False,
          drift_correction: bool = False, sigma: float = 0.0, interval: bool = True) -> Change:
    """Compare the rows ``b`` (base) and ``n`` (new) of one configuration. ``refs``: the reference rows
    (base, new) at the same provider and batch size, each a dict of reference model -> rows, or None:
    their ratio is always reported (the first reference's; the movement of all of them widens the
    interval), and the verdict is judged on the cell's ratio divided by it only with
    ``drift_correction`` (off by default, see :data:`DRIFT_CORRECTION`). ``sigma``: the host's
    between-run spread (sd of ln ratio; 0 for two sides measured in one process): the interval is
    widened by ``max(sigma, reference movement)`` (:func:`widen`). ``interval=False``: the figures
    only, no bootstrap (NaN interval; a live A/B's sequential test gives its own)."""
    bs, weak_b = block_set(b, base.samples)
    ns, weak_n = block_set(n, new.samples)
    nan = math.nan
    ratio = raw_lo = raw_hi = ref_r = ref_lo = ref_hi = nan
    lo = hi = nan
    normalised = False
    between, reason = 0.0, ""
    bp, np50 = med(b, "latency_p50_ms"), med(n, "latency_p50_ms")
    bi, ni = med(b, "throughput_ips"), med(n, "throughput_ips")
    if bs is not None and ns is not None:
        bp, np50 = bs.p50_ms, ns.p50_ms  # pooled over every call of every repeat
        if not (weak_b or weak_n):
            bi, ni = bs.ips, ns.ips
        ratio = ns.typical_ms / bs.typical_ms if bs.typical_ms > 0 else nan
        if interval and bs.m >= MIN_BLOCKS_CI and ns.m >= MIN_BLOCKS_CI and bp > 0:
            rng = np.random.default_rng(BOOTSTRAP_SEED)
            draws = ratio_draws(bs, ns, rng, paired)
            raw_lo, raw_hi = percentile_ci(draws)
            lo, hi = raw_lo, raw_hi
            moves = []
            for name in (sorted(set(refs[0]) & set(refs[1])) if refs else []):
                rb, rn = block_set(refs[0][name], base.samples)[0], block_set(refs[1][name], new.samples)[0]
                if rb is None or rn is None or min(rb.m, rn.m) < MIN_BLOCKS_CI or not rb.typical_ms > 0:
                    continue
                moves.append(rn.typical_ms / rb.typical_ms)
                if len(moves) > 1:
                    continue
                ref_draws = ratio_draws(rb, rn, rng, paired)
                ref_r = moves[0]
                ref_lo, ref_hi = percentile_ci(ref_draws)
                if drift_correction and (ref_lo > 1 or ref_hi < 1):  # the machine moved: judge relative to it
                    normalised = True
                    ratio = ratio / ref_r
                    lo, hi = percentile_ci(draws / ref_draws)
            moved = reference_movement(moves)
            # divided by the reference, its movement is out of the ratio: only the host's spread is left
            between = sigma if normalised else max(sigma, 0.0 if math.isnan(moved) else moved)
            within = verdict(lo, hi, noise)
            lo, hi = widen(ratio, lo, hi, between)
            if within in ("slower", "faster") and verdict(lo, hi, noise) == "inconclusive":
                reason = (f"the machine's speed changed by {ref_r - 1:+.0%} between the runs (reference network)"
                          if not math.isnan(moved) and moved >= sigma else
                          f"this host's separate runs differ by +-{math.expm1(Z95 * sigma):.0%} (95%, noise profile)")
                reason += f"; within the runs {within} [{raw_lo:.3f}, {raw_hi:.3f}]: compare with --live"
    return Change(key_, bp, np50, med(b, "latency_p99_ms"), med(n, "latency_p99_ms"), bi, ni, med(b, "accuracy_top1"), med(n, "accuracy_top1"), ratio, lo, hi,
                  raw_lo, raw_hi, ref_r, ref_lo, ref_hi, normalised, (bs.m if bs else 0, ns.m if ns else 0),
                  weak_b or weak_n, verdict(lo, hi, noise), (_threads(b), _threads(n)), between, reason)


def _threads(rs: list[BenchmarkRecord]) -> str:
    return ",".join(sorted({str(r.intra_op_threads) for r in rs}))


def med(rs: list[BenchmarkRecord], field: str) -> float:
    """Median of a field over repeats, NaN when every value is missing."""
    vals = [v for v in (getattr(r, field) for r in rs) if not math.isnan(v)]
    return float(np.median(vals)) if vals else math.nan


def compare(base: ResultSet, new: ResultSet, noise: float = NOISE,
            drift_correction: bool = DRIFT_CORRECTION, sigma: float | None = None) -> tuple[list[Change], list[tuple], list[tuple]]:
    """Join and judge (``drift_correction``, ``sigma``: see :func:`judge`; ``sigma`` None: from the
    sets' system JSONs or this host's noise profile, :func:`bench.noiseprofile.sigma_of`). Returns
    (changes, keys only in base, keys only in new).

    Raises:
        UsageError: the sides' nodes do not pair (:func:`node_pairing`)."""
    if sigma is None:
        sigma = noiseprofile.sigma_of(base.systems + new.systems)[0]
    nodes = node_pairing(base, new)
    gb, gn = defaultdict(list), defaultdict(list)
    for r in base.rows:
        gb[key(r, nodes)].append(r)
    for r in new.rows:
        gn[key(r, nodes)].append(r)
    rb, rn = _ref_index(base.references, bool(nodes)), _ref_index(new.references, bool(nodes))
    changes = []
    for k in gb:
        if k not in gn:
            continue
        r0 = gb[k][0]
        at = (r0.provider, r0.batch_size) + ((series_node(r0),) if nodes else ())
        refs = (rb[at], rn[at]) if rb.get(at) and rn.get(at) else None
        changes.append(judge(k, gb[k], gn[k], base, new, noise, refs, drift_correction=drift_correction, sigma=sigma))
    return changes, [k for k in gb if k not in gn], [k for k in gn if k not in gb]


def system_differences(base: ResultSet, new: ResultSet) -> list[str]:
    """Lines naming the system fields that differ between the two sets (CPU, versions, providers...)."""
    def fields(rs: ResultSet) -> dict:
        out = {}
        for s in rs.systems:
            for f in SYSTEM_FIELDS:
                if f in s:
                    out.setdefault(f, set()).add(json.dumps(s[f], sort_keys=True))
        return out

    fb, fn = fields(base), fields(new)
    return [f"{f}: {' | '.join(sorted(fb.get(f, {'?'})))} -> {' | '.join(sorted(fn.get(f, {'?'})))}"
            for f in SYSTEM_FIELDS if fb.get(f) != fn.get(f) and (f in fb or f in fn)]
