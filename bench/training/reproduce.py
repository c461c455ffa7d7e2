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
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import nn

from ...models.data import Dataset
from ...models.errors import UsageError
from ...models.files import atomic_write_bytes
from ...models.registry import get_spec, list_models
from ...models.spec import ModelSpec
from ...models.train import ProgressFn, resolve_device, train
from ..measure.records import CsvAppender

RUN_FIELDS = [
    "experiment", "dataset", "model", "scale", "seed", "profile", "recipe", "reduced", "metric",
    "final", "best", "best_step", "checkpoints", "reconstruction_mse", "steps", "epochs", "device",
    "threads", "wall_s", "finished_utc", "commit", "status", "error",
]
# Columns added after the first CSVs were written: files without them read as all ``ok``.
ADDED_RUN_FIELDS = ("status", "error")
# The autoencoder study's input scales: preprocess name -> label.
AE_SCALES = {"unit": "[0,1]", "signed": "[-1,1]"}
AE_MODELS = ("zhu-autoencoder", "zhu-conv-autoencoder")
# A claim of one run counts as met ("within") when it lies inside the runs'
# spread: the mean +- 2 sample standard deviations, widened to the runs' min..max
# and by half a unit of the claim's last printed digit (0.005 pp for 97.65%);
# 2 sd covers about 95% of runs under a normal model of seed-to-seed variation.
# A claim that is itself a mean of k runs is compared as two means: our mean
# +- 2 sd * sqrt(1/n + 1/k) (the standard error of the difference, assuming the
# paper's runs vary as ours do), widened by the same half digit.
SD_BAND = 2.0


@dataclass(frozen=True)
class PlannedRun:
    """One training run of the reproduction."""

    experiment: str  # "paper" or "ae-scale"
    model: str
    seed: int
    profile: str  # the profile actually trained
    scale: str = ""  # ae-scale: "unit" or "signed"
    reduced: str = ""  # why and how the recipe was cut ("" when it is the requested one)

    @property
    def key(self) -> tuple:
        return (self.experiment, self.model, self.scale, str(self.seed))


def plan(specs: Iterable[ModelSpec], seeds: int, profile: str, device: torch.device,
         reduce_on_cpu: bool = True, ae_study: bool = True) -> list[PlannedRun]:
    """The runs of a reproduction, in registry order, seeds 0..seeds-1 of each model.

    Raises:
        UsageError: ``seeds`` below 1.
    """
    if seeds < 1:
        raise UsageError(f"--seeds must be at least 1, got {seeds}")
    specs = list(specs)
    runs: list[PlannedRun] = []
    for s in specs:
        s.recipe_for(profile)  # unknown profile -> UsageError before any work
        prof, reduced = profile, ""
        if profile == "paper" and device.type == "cpu" and reduce_on_cpu and s.extra.get("cpu_infeasible"):
            prof = "quick"
            reduced = f"CPU budget: {s.quick.note} ({s.extra['cpu_infeasible']})"
        runs += [PlannedRun("paper", s.name, seed, prof, reduced=reduced) for seed in range(seeds)]
    if ae_study and any(s.name in AE_MODELS for s in specs):
        runs += [PlannedRun("ae-scale", m, seed, profile, scale=sc)
                 for m in AE_MODELS for sc in AE_SCALES for seed in range(seeds)]
    return runs


class _Reconstructor(nn.Module):
    """(N, 1, 28, 28) -> reconstruction (N, 1, 28, 28), last activation set by the scale."""

    def __init__(self, model: str, scale: str) -> None:
        super().__init__()
        base = get_spec(model).build()
        dec = base.decoder
        dec[len(dec) - 1] = nn.Sigmoid() if scale == "unit" else nn.Tanh()
        # the dense decoder ends flat (N, 784); the conv decoder already gives (N, 1, 28, 28)
        shape = [nn.Unflatten(1, (1, 28, 28))] if model == "zhu-autoencoder" else []
        self.body = nn.Sequential(base.encoder, dec, *shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def ae_spec(model: str, scale: str) -> ModelSpec:
    """The spec trained by the ``ae-scale`` study: ``model``'s autoencoder on ``scale``
    with the conv autoencoder's recipe (paper: Adam 5e-3, wd 1e-5, batch 128, 20 epochs)."""
    conv = get_spec("zhu-conv-autoencoder")
    return replace(conv, name=f"{model}@{scale}", build=lambda: _Reconstructor(model, scale), preprocess=scale,
                   task="reconstruct", trainer="reconstruct")


def _final_and_best(meta: dict) -> tuple[float, str, str, str]:
    stage = meta["stages"].get("classify", {})
    curve = stage.get("eval_curve")
    if not curve:
        return meta["test_metric"], "", "", ""
    marks = get_spec(meta["model"]).extra.get("table_i", {})
    at = {}
    for k in sorted(marks):
        upto = [acc for step, acc in curve if step <= k]
        exact = [acc for step, acc in curve if step == k]
        if upto and exact:  # a run of k steps is the first k steps of this one (constant lr, same seed)
            at[str(k)] = {"final": exact[0], "best": max(upto)}
    return meta["test_metric"], f"{stage['best_test_accuracy']:.6f}", str(stage["best_step"]), json.dumps(at)


def execute(run: PlannedRun, data: Dataset, device: str, artifacts_root: Path | None,
            progress: ProgressFn | None = None, commit: str = "") -> dict:
    """Train one planned run; returns its CSV row (see :data:`RUN_FIELDS`).

    ``paper`` runs write their checkpoint under ``artifacts_root`` (so a reproduced
    model can be exported and benchmarked); ``ae-scale`` runs keep none.
    """
    if run.experiment == "paper":
        spec = get_spec(run.model)
        stem = None
        if artifacts_root is not None:
            from ..measure.pipeline import Artifacts

            arts = Artifacts(artifacts_root, data.name, run.profile, run.seed)
            stem = arts.checkpoint(spec.name)
        res = train(spec, data, profile=run.profile, device=device, seed=run.seed, progress=progress,
                    checkpoint_stem=stem, log_path=None if stem is None else stem.with_suffix(".train.csv"))
    else:
        spec = ae_spec(run.model, run.scale)
        res = train(spec, data, profile=run.profile, device=device, seed=run.seed, progress=progress)
    meta = res.meta
    final, best, best_step, marks = _final_and_best(meta)
    return {
        "experiment": run.experiment, "dataset": data.name, "model": run.model,
        "scale": AE_SCALES.get(run.scale, "") if run.experiment == "ae-scale" else "",
        "seed": run.seed, "profile": run.profile, "recipe": meta["recipe_summary"], "reduced": run.reduced,
        "metric": meta["metric"], "final": f"{final:.6f}", "best": best, "best_step": best_step,
        "checkpoints": marks,
        "reconstruction_mse": f"{meta['reconstruction_mse']:.6f}" if "reconstruction_mse" in meta else "",
        "steps": sum(s["steps"] for s in meta["stages"].values()), "epochs": meta["epochs_done"],
        "device": meta["device"], "threads": meta["threads"], "wall_s": f"{meta['wall_time_s']:.1f}",
        "finished_utc": meta["finished_utc"], "commit": commit, "status": "ok", "error": "",
    }


def error_row(run: PlannedRun, dataset: str, error: str, commit: str = "") -> dict:
    """The CSV row of a run that could not be trained: its identity, ``status`` ``error`` and
    the reason in ``error``; the measurement columns are empty."""
    row = dict.fromkeys(RUN_FIELDS, "")
    row.update(experiment=run.experiment, dataset=dataset, model=run.model,
               scale=AE_SCALES.get(run.scale, "") if run.experiment == "ae-scale" else "", seed=run.seed,
               profile=run.profile, reduced=run.reduced, commit=commit, status="error", error=error,
               finished_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return row


def is_ok(row: dict) -> bool:
    """Whether a runs-CSV row is a finished run (rows written before the ``status`` column are)."""
    return row.get("status", "ok") in ("ok", "", None)


def run_key(row: dict) -> tuple:
    scale = {v: k for k, v in AE_SCALES.items()}.get(row["scale"], "")
    return (row["experiment"], row["model"], scale, str(row["seed"]))


def runs_csv(path: Path) -> CsvAppender:
    """The append-only, fsynced CSV of finished runs (columns :data:`RUN_FIELDS`). An existing
    file written before the ``status`` and ``error`` columns is first rewritten (atomically)
    with them, its rows marked ``ok``, so that appended rows line up with its header.

    Raises:
        UsageError: its folder cannot be created or written; an existing file that is not a
            reproduction CSV.
    """
    if path.is_file() and path.stat().st_size > 0:
        with open(path, newline="") as fh:
            header = next(csv.reader(fh), [])
        if header != RUN_FIELDS:
            rows = read_runs(path)
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=RUN_FIELDS, lineterminator="\n", extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({**dict.fromkeys(RUN_FIELDS, ""), "status": "ok", **r})
            atomic_write_bytes(path, buf.getvalue().encode())
    return CsvAppender(path, RUN_FIELDS)


def read_runs(path: Path) -> list[dict]:
    """Rows of a reproduction CSV.

    Raises:
        UsageError: missing file, or a CSV that is not a reproduction CSV.
    """
    if not path.is_file():
        raise UsageError(f"{path} does not exist")
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or not {"experiment", "model", "seed", "final"} <= set(reader.fieldnames):
                raise UsageError(f"{path} is not a reproduction CSV (written by `mnistbench reproduce`)")
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path} is not a readable CSV: {exc}") from None
    return rows


# ----------------------------------------------------------------------------------------------
# Summary and verdicts


@dataclass
class Summary:
    """Seed statistics of one (experiment, dataset, model, scale) group."""

    experiment: str
    dataset: str
    model: str
    scale: str
    metric: str
    n: int
    mean: float
    sd: float
    lo: float
    hi: float
    best_mean: float | None
    best_sd: float | None
    profile: str
    recipe: str
    reduced: str
    device: str
    wall_s: float
    rows: list[dict]

    def fmt(self, which: str = "final") -> str:
        m, sd = (self.mean, self.sd) if which == "final" else (self.best_mean, self.best_sd)
        if self.metric == "accuracy":
            return f"{100 * m:.2f} ± {100 * sd:.2f}%"
        return f"{m:.4f} ± {sd:.4f}"


def _sd(xs: list[float]) -> float:
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def summarize(rows: list[dict]) -> list[Summary]:
    """Group finished runs (error rows are left out) by (experiment, dataset, model, scale) in
    first-seen order."""
    groups: dict[tuple, list[dict]] = {}
    for r in filter(is_ok, rows):
        groups.setdefault((r["experiment"], r["dataset"], r["model"], r["scale"]), []).append(r)
    out = []
    for (exp, ds, model, scale), rs in groups.items():
        finals = [float(r["final"]) for r in rs]
        bests = [float(r["best"]) for r in rs if r.get("best")]
        out.append(Summary(
            exp, ds, model, scale, rs[0]["metric"], len(rs), statistics.fmean(finals), _sd(finals), min(finals),
            max(finals), statistics.fmean(bests) if bests else None, _sd(bests) if bests else None,
            rs[0]["profile"], rs[0]["recipe"], rs[0]["reduced"], rs[0]["device"],
            statistics.median(float(r["wall_s"]) for r in rs), rs))
    return out


def _digits(x: float) -> int:
    text = f"{x:.6f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


def verdict(measured: list[float], claim: float | None, low: float | None, high: float | None,
            metric: str, mean_of: int | None = None) -> tuple[str, str]:
    """(verdict, explanation): ``within``, ``above`` or ``below`` the claim.

    A point claim is met when it lies in the runs' band (mean +- ``SD_BAND`` sd,
    widened to min..max and by half a unit of the claim's last digit); a range
    claim when the mean lies in [low, high]. ``above``/``below`` compare numbers
    (for MSE, above is worse). ``no claim`` when the paper gives no figure.
    """
    m, sd = statistics.fmean(measured), _sd(measured)
    pct = metric == "accuracy"

    def f(x: float) -> str:
        return f"{100 * x:.2f}%" if pct else f"{x:.4f}"

    if claim is None and low is None:
        return "no claim", ""
    if claim is None:
        if low <= m <= high:
            return "within", f"mean {f(m)} lies in the stated {f(low)}–{f(high)}"
        side = "above" if m > high else "below"
        edge = high if m > high else low
        return side, f"mean {f(m)} is {side} the stated {f(low)}–{f(high)} by {_diff(m, edge, pct)}"
    half = 0.5 * 10 ** -_digits(claim)
    if mean_of:
        se = SD_BAND * sd * math.sqrt(1 / len(measured) + 1 / mean_of)
        if m - se - half <= claim <= m + se + half:
            return "within", (f"claim {f(claim)} (a mean of {mean_of} runs) is within 2 standard errors of our mean "
                              f"of {len(measured)} ({f(m - se)}–{f(m + se)})")
        side = "above" if m > claim else "below"
        spread = f"{100 * se:.2f} pp" if pct else f"{se:.4f}"
        return side, (f"mean {f(m)} of {len(measured)} runs is {_diff(m, claim, pct)} {side} the claim {f(claim)} "
                      f"(a mean of {mean_of}); 2 standard errors of the difference: {spread}")
    lo = min(m - SD_BAND * sd, min(measured)) - half
    hi = max(m + SD_BAND * sd, max(measured)) + half
    if lo <= claim <= hi:
        return "within", f"claim {f(claim)} lies in the runs' spread ({f(lo + half)}–{f(hi - half)})"
    side = "above" if m > claim else "below"
    return side, f"mean {f(m)} is {_diff(m, claim, pct)} {side} the claim {f(claim)} (spread {f(lo + half)}–{f(hi - half)})"


def _diff(a: float, b: float, pct: bool) -> str:
    return f"{100 * abs(a - b):.2f} pp" if pct else f"{abs(a - b) / b:.0%}"


def _claim_text(spec: ModelSpec) -> str:
    r = spec.reported
    if r.short:
        return r.short
    if r.value is not None:
        return f"{100 * r.value:.2f}%" if r.metric == "accuracy" else f"{r.value:.4f} MSE"
    if r.low is not None:
        return f"{100 * r.low:.0f}–{100 * r.high:.0f}%"
    return "—"


def _length(s: Summary) -> str:
    spec = get_spec(s.model)
    r = spec.recipe_for(s.profile)
    if r.steps is not None:
        text = f"{r.steps:,} steps"
    elif r.stage_epochs is not None:
        text = f"{r.stage_epochs}+{r.epochs} epochs"
    else:
        text = f"{r.epochs} epoch{'s' if r.epochs != 1 else ''}"
    if r.train_images and r.train_images < 60_000 and r.steps is None:
        text += f" of {r.train_images:,} images"
    return text


ReproRow = dict[str, str]


def reproduction_rows(rows: list[dict]) -> list[ReproRow]:
    """The reproduction table: one row per model of the ``paper`` experiment on MNIST,
    plus one column per other dataset found."""
    sums = [s for s in summarize(rows) if s.experiment == "paper"]
    mnist = [s for s in sums if s.dataset == "mnist"]
    other_cols = sorted({s.dataset for s in sums if s.dataset != "mnist"})
    by_model = {s.model: s for s in mnist}
    models = list(by_model) + [s.model for s in sums if s.dataset != "mnist" and s.model not in by_model]
    table = []
    for name in dict.fromkeys(models):
        spec = get_spec(name)
        row: ReproRow = {"model": name, "paper": spec.ref, "claim": _claim_text(spec)}
        s = by_model.get(name)
        if s is None:
            row.update(measured="not run", spread="", n="0", length="", device="", wall="", verdict="", why="")
        else:
            rec = spec.reported
            use_best = s.best_mean is not None and spec.extra.get("table_i")
            vals = [float(r["best"]) for r in s.rows] if use_best else [float(r["final"]) for r in s.rows]
            v, why = verdict(vals, rec.value, rec.low, rec.high, s.metric, rec.mean_of)
            measured = s.fmt("final")
            if use_best:
                measured = f"final {s.fmt('final')}; best-of {s.fmt('best')}"
                why = f"best-of (selected on the test set, as the paper did): {why}"
            if rec.mean_of and s.n < rec.mean_of:
                why += f"; the paper's figure is a mean of {rec.mean_of} runs, this one of {s.n}"
            if s.reduced:
                v = f"{v} (reduced)"
                why = f"REDUCED RECIPE ({s.reduced}); {why}"
            spread = (f"{100 * min(vals):.2f}–{100 * max(vals):.2f}" if s.metric == "accuracy"
                      else f"{min(vals):.4f}–{max(vals):.4f}")
            if s.model == "zhu-autoencoder":
                mses = [float(r["reconstruction_mse"]) for r in s.rows if r.get("reconstruction_mse")]
                if mses:
                    why += f"; its autoencoder's reconstruction MSE on [0,1]: {statistics.fmean(mses):.4f}"
            row.update(measured=measured, spread=spread, n=str(s.n), length=_length(s), device=s.device,
                       wall=f"{s.wall_s:.0f} s", verdict=v, why=why)
        for ds in other_cols:
            o = next((x for x in sums if x.dataset == ds and x.model == name), None)
            row[ds] = f"{o.fmt('final')} (n={o.n}, {o.profile})" if o else "not run"
        table.append(row)
    return table


def table_i_rows(rows: list[dict]) -> list[ReproRow]:
    """rich-cnn's Table I (best-of every 100 steps at 1,000 to 10,000 steps) against the runs."""
    spec = get_spec("rich-cnn")
    marks = spec.extra.get("table_i", {})
    runs = [r for r in rows if r["experiment"] == "paper" and r["model"] == "rich-cnn" and r["dataset"] == "mnist"
            and r.get("checkpoints") and is_ok(r)]
    out = []
    for k in sorted(marks):
        finals, bests = [], []
        for r in runs:
            at = json.loads(r["checkpoints"]).get(str(k))
            if at:
                finals.append(at["final"])
                bests.append(at["best"])
        if not bests:
            continue
        v, why = verdict(bests, marks[k], None, None, "accuracy")
        out.append({"steps": f"{k:,}", "claim (best-of)": f"{100 * marks[k]:.2f}%",
                    "measured best-of": f"{100 * statistics.fmean(bests):.2f} ± {100 * _sd(bests):.2f}%",
                    "measured final": f"{100 * statistics.fmean(finals):.2f} ± {100 * _sd(finals):.2f}%",
                    "n": str(len(bests)), "verdict": v})
    return out


def ae_scale_rows(rows: list[dict]) -> list[ReproRow]:
    """The autoencoder study: MSE per model and input scale, with the paper's figures."""
    claims = {"zhu-conv-autoencoder": 0.1129, "zhu-autoencoder": 0.1398}  # Zhu section 6
    out = []
    for s in summarize(rows):
        if s.experiment != "ae-scale":
            continue
        out.append({"dataset": s.dataset, "model": s.model, "input scale": s.scale,
                    "test MSE": s.fmt(), "n": str(s.n), "paper": f"{claims[s.model]:.4f}",
                    "recipe": s.recipe})
    return out


def markdown(rows: list[dict], sources: list[str] | None = None) -> str:
    """The reproduction table, rich-cnn's Table I and the autoencoder study as markdown, then
    the runs that failed (error rows not completed by a later row of the same run).

    Rows are taken in plan order (experiment, registry order of the model, scale, seed), so
    that runs finished out of order (``--executor ray``) give the same table."""
    rows = plan_order(rows)
    table = reproduction_rows(rows)
    parts = []
    if table:
        parts.append(_md(table, {"why": "note"}))
    ti = table_i_rows(rows)
    if ti:
        parts.append("rich-cnn, Table I (one 10,000-step run per seed, scored every 100 steps; a k-step run is the "
                     "first k steps of it because the learning rate is constant):\n\n" + _md(ti))
    ae = ae_scale_rows(rows)
    if ae:
        parts.append("Autoencoders at the same settings (the conv autoencoder's recipe), both input scales; output "
                     "activation sigmoid on [0,1], tanh on [-1,1]:\n\n" + _md(ae))
    finished = {run_key(r) for r in rows if is_ok(r)}
    failed = {run_key(r): r for r in rows if not is_ok(r) and run_key(r) not in finished}
    if failed:
        parts.append("Failed runs (not in the tables above; `--resume` retrains them):\n\n" + "\n".join(
            f"- {r['experiment']} {r['model']}{' ' + r['scale'] if r['scale'] else ''} seed {r['seed']}: {r['error']}"
            for r in failed.values()))
    if sources:
        parts.append("Sources: " + ", ".join(f"`{s}`" for s in sources))
    return "\n\n".join(parts) + "\n"


def plan_order(rows: list[dict]) -> list[dict]:
    """``rows`` stably sorted as :func:`plan` orders runs: ``paper`` before ``ae-scale``, models
    in registry order, then scale and seed (numerically)."""
    index = {name: i for i, name in enumerate(list_models())}
    exp = {"paper": 0, "ae-scale": 1}

    def key(r: dict) -> tuple:
        seed = str(r["seed"])
        return (exp.get(r["experiment"], 2), index.get(r["model"], len(index)), r["scale"],
                int(seed) if seed.isdigit() else 0)

    return sorted(rows, key=key)


def _md(rows: list[dict], rename: dict | None = None) -> str:
    rename = rename or {}
    cols = list(rows[0])
    head = "| " + " | ".join(rename.get(c, c) for c in cols) + " |"
    sep = "|" + "|".join("---" for _ in cols) + "|"
    body = ["| " + " | ".join(str(r.get(c, "")).replace("|", "/") for c in cols) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def write_markdown(path: Path, rows: list[dict], sources: list[str]) -> None:
    atomic_write_bytes(path, markdown(rows, sources).encode())


def run_all(runs: list[PlannedRun], data: Dataset, device: str, sink: CsvAppender, artifacts_root: Path | None,
            on_start: Callable[[PlannedRun, int, int], ProgressFn | None] | None = None,
            on_done: Callable[[dict], None] | None = None, commit: str = "") -> list[dict]:
    """Execute ``runs`` in order, appending each row to ``sink`` as soon as it finishes."""
    resolve_device(device)
    done = []
    for i, run in enumerate(runs):
        progress = on_start(run, i, len(runs)) if on_start else None
        row = execute(run, data, device, artifacts_root, progress, commit)
        sink.append_row(row)
        done.append(row)
        if on_done:
            on_done(row)
    return done
