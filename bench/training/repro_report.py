"""The report of a paper reproduction, computed from its runs CSV: seed statistics per group
(:class:`Summary`, :func:`summarize`), the verdict of each measurement against the paper's claim
(:func:`verdict`, within a band of :data:`SD_BAND` standard deviations), and the markdown of the
reproduction table, rich-cnn's Table I, the autoencoder study and the failed runs
(:func:`markdown`, :func:`write_markdown`).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from ...models.files import atomic_write_bytes
from ...models.registry import get_spec
from ...models.spec import ModelSpec
from .repro_csv import is_ok, run_key
from .repro_plan import plan_order

# A claim of one run counts as met ("within") when it lies inside the runs'
# spread: the mean +- 2 sample standard deviations, widened to the runs' min..max
# and by half a unit of the claim's last printed digit (0.005 pp for 97.65%);
# 2 sd covers about 95% of runs under a normal model of seed-to-seed variation.
# A claim that is itself a mean of k runs is compared as two means: our mean
# +- 2 sd * sqrt(1/n + 1/k) (the standard error of the difference, assuming the
# paper's runs vary as ours do), widened by the same half digit.
SD_BAND = 2.0


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


def _md(rows: list[dict], rename: dict | None = None) -> str:
    rename = rename or {}
    cols = list(rows[0])
    head = "| " + " | ".join(rename.get(c, c) for c in cols) + " |"
    sep = "|" + "|".join("---" for _ in cols) + "|"
    body = ["| " + " | ".join(str(r.get(c, "")).replace("|", "/") for c in cols) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def write_markdown(path: Path, rows: list[dict], sources: list[str]) -> None:
    atomic_write_bytes(path, markdown(rows, sources).encode())
