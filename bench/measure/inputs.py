"""Command-line text to typed values: every option refused up front, in one line (:class:`UsageError`).

Each parser takes the text a user typed (``"1,8,32"``, ``"auto,2"``, ``"on,off"``) and returns the
values :class:`mnistbench.bench.measure.runner.Axes` and the other typed configurations hold, or raises
:class:`UsageError` naming the option and an example. Nothing here reads files or builds sessions.
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil

from ...models.errors import UsageError
from .defaults import AUTO, DEFAULT_SPINNING, DEFAULT_THREADS, PRECISIONS  # noqa: F401  (re-exported)

VARIANTS = ("fp32", "int8", "fp16", "fp16-io")  # fp16-io: fp16 with float16 inputs and outputs
FORMATS = ("rich", "markdown")

# A call's input is float32 (b, 1, 28, 28): 3,136 bytes an image. A batch whose input alone would take
# more than a quarter of free host memory (it is copied for the call, its outputs and the session's
# arena grow with it) is refused before any session is built.
IMAGE_BYTES = 4 * 28 * 28
MAX_THREADS_PER_CORE = 4  # more intra-op threads than this per logical core only oversubscribes


def parse_ints(text: str, what: str, minimum: int, example: str) -> list[int]:
    """Comma-separated whole numbers, each at least ``minimum``; sorted, duplicates dropped.

    Raises:
        UsageError: a part that is not a whole number, or one below ``minimum``.
    """
    vals = []
    for part in text.split(","):
        part = part.strip()
        try:
            v = int(part)
        except ValueError:
            raise UsageError(f"{what} {part!r} is not a whole number (use e.g. {example})") from None
        if v < minimum:
            raise UsageError(f"{what} must be at least {minimum}, got {v}")
        vals.append(v)
    return sorted(set(vals))


def parse_batch_sizes(text: str) -> list[int]:
    """``--batch-sizes``: images per call, e.g. ``"1,8,32"`` -> ``[1, 8, 32]``.

    Raises:
        UsageError: not whole numbers >= 1, or a batch whose float32 input alone would take more
            than a quarter of the host's free memory.
    """
    sizes = parse_ints(text, "batch size", 1, "--batch-sizes 1,8,32")
    free = psutil.virtual_memory().available
    for b in sizes:
        if b * IMAGE_BYTES > free / 4:
            raise UsageError(f"batch size {b:,} needs {b * IMAGE_BYTES / 2**30:,.1f} GiB for its input alone; "
                             f"this host has {free / 2**30:.1f} GiB free (largest batch allowed here: "
                             f"{int(free / 4 / IMAGE_BYTES):,})")
    return sizes


def parse_threads(text: str) -> list[int]:
    """``--threads``: ``auto`` (:data:`runner.AUTO`), 0 (the runtime's choice) or counts, comma-separated.

    Raises:
        UsageError: not ``auto`` or a whole number >= 0, or more than
            :data:`MAX_THREADS_PER_CORE` per logical core.
    """
    parts = [p.strip() for p in text.split(",")]
    if not any(parts):
        raise UsageError("--threads takes auto, 0 or thread counts, comma-separated; got nothing")
    nums = ",".join(p for p in parts if p.lower() != "auto")
    vals = ([AUTO] if any(p.lower() == "auto" for p in parts) else []) + (
        parse_ints(nums, "thread count", 0, "--threads auto,1,2") if nums else [])
    most = MAX_THREADS_PER_CORE * (os.cpu_count() or 1)
    if max(vals, default=0) > most:
        raise UsageError(f"thread count {max(vals)} is more than {MAX_THREADS_PER_CORE} per logical core "
                         f"({os.cpu_count()} here): at most {most}")
    return vals


def threads_text(threads: tuple[int, ...]) -> str:
    """The ``--threads`` text of parsed thread counts (inverse of :func:`parse_threads`)."""
    return ",".join("auto" if t == AUTO else str(t) for t in threads)


SPINNING = {"default": None, "on": True, "off": False}


def parse_spinning(text: str) -> list[bool | None]:
    """``--spinning``: default (None), on (True), off (False), comma-separated.

    Raises:
        UsageError: another word.
    """
    vals = []
    for part in text.split(","):
        key = part.strip().lower()
        if key not in SPINNING:
            raise UsageError(f"--spinning takes default, on or off (comma-separated), not {part.strip()!r}")
        vals.append(SPINNING[key])
    return list(dict.fromkeys(vals))


def spinning_text(spinning: tuple[bool | None, ...]) -> str:
    """The ``--spinning`` text of parsed values (inverse of :func:`parse_spinning`)."""
    return ",".join(next(k for k, v in SPINNING.items() if v is s) for s in spinning)


def parse_providers(values: list[str]) -> list[str]:
    """``--provider`` (repeated or comma-separated): execution provider short names, e.g. cpu, cuda.

    Raises:
        UsageError: an unknown provider.
    """
    from ..runtimes.runtime import provider_name  # onnxruntime: only the commands that run models parse providers

    provs = [p.strip().lower() for v in values for p in v.split(",") if p.strip()]
    if not provs:
        raise UsageError("--provider names no execution provider (e.g. --provider cpu,cuda)")
    for p in provs:
        provider_name(p)
    return list(dict.fromkeys(provs))


def parse_runtimes(values: list[str]) -> list[str]:
    """``--runtime`` (repeated or comma-separated): names of registered runtimes (:mod:`runtimes.base`).

    Raises:
        UsageError: an unknown runtime.
    """
    from ..runtimes.base import get_runtime  # the registry imports every runtime: for commands that run models

    rts = [r.strip().lower() for v in values for r in v.split(",") if r.strip()]
    if not rts:
        raise UsageError("--runtime names no runtime (e.g. --runtime onnxruntime,torch)")
    for r in rts:
        get_runtime(r)  # UsageError naming the registered ones
    return list(dict.fromkeys(rts))


def row_variants(variant: str, precision: str, runtimes: list[str]) -> list[str]:
    """The row variants of ``run``: the ONNX files of ``--variant`` (fp32, int8, fp16, fp16-io) and the
    precisions of ``--precision`` other than fp32 (bf16: the fp32 file run at bf16 by the runtimes
    that take a precision). fp32 rows are kept only when fp32 is in both lists.

    Raises:
        UsageError: an unknown variant or precision; a precision that none of ``runtimes`` runs.
    """
    from ..runtimes.base import get_runtime  # the registry imports every runtime: for commands that run models

    files = [v.strip() for v in variant.split(",") if v.strip()]
    precs = [p.strip().lower() for p in precision.split(",") if p.strip()]
    for v in files:
        if v not in VARIANTS:
            raise UsageError(f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
    for p in precs:
        if p not in PRECISIONS:
            raise UsageError(f"unknown precision {p!r}; choose from {', '.join(PRECISIONS)}")
        if p != "fp32" and not any(p in get_runtime(r).variants for r in runtimes):
            raise UsageError(f"precision {p} needs --runtime openvino, torch or torch.compile "
                             f"(ONNX Runtime runs fp32; its int8 is --variant int8)")
    out = [v for v in files if v != "fp32" or "fp32" in precs] + [p for p in precs if p != "fp32"]
    if not out:
        raise UsageError("--variant and --precision leave nothing to run (fp32 rows need fp32 in both)")
    return list(dict.fromkeys(out))


def variant_texts(variants: tuple[str, ...]) -> tuple[str, str]:
    """``(--variant, --precision)`` texts that :func:`row_variants` turns back into ``variants``."""
    files = [v for v in variants if v in VARIANTS and v != "fp32"]
    precs = [v for v in variants if v not in VARIANTS]
    if "fp32" in variants:
        return ",".join(["fp32", *files]), ",".join(["fp32", *precs])
    return ",".join(files or ["fp32"]), ",".join(precs or ["fp32"])


def parse_cpu_list(text: str) -> set[int]:
    """``--pin-cpus`` text (``0,2-3``) as CPU numbers, every one a CPU this process may run on.

    Raises:
        UsageError: a malformed list, a range backwards, or CPUs this process may not run on (checked
            range by range, so that ``0-300000000`` is refused at once rather than enumerated).
    """
    allowed = os.sched_getaffinity(0)
    cpus: set[int] = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            a, b = int(lo), int(hi or lo)
            if a < 0 or b < a:
                raise ValueError
            if b > max(allowed):
                raise UsageError(f"--pin-cpus {text}: this process may run on CPUs {sorted(allowed)} only")
            cpus.update(range(a, b + 1))
    except ValueError:
        raise UsageError(f"--pin-cpus takes a list such as 0,2-3, got {text!r}") from None
    if not cpus or not cpus <= allowed:
        raise UsageError(f"--pin-cpus {text}: this process may run on CPUs {sorted(allowed)} only")
    return cpus


def pin_cpus(text: str | None) -> str:
    """Pin this process to the CPUs in ``text`` (``0,2-3``); returns the affinity as a list, '' when not asked.

    Raises:
        UsageError: as :func:`parse_cpu_list`.
    """
    if not text:
        return ""
    cpus = parse_cpu_list(text)
    os.sched_setaffinity(0, cpus)
    return ",".join(map(str, sorted(cpus)))


def check_creatable(folder: Path, option: str) -> None:
    """``folder`` exists as a folder, or can be made (its nearest existing ancestor is a writable
    folder), checked without creating anything.

    Raises:
        UsageError: a file is in the way, or the nearest existing folder is not writable.
    """
    folder = Path(folder)
    for p in (folder, *folder.parents):
        if p.exists():
            if not p.is_dir():
                raise UsageError(f"{option} {folder}: {p} is a file, not a folder")
            if p != folder and not os.access(p, os.W_OK | os.X_OK):
                raise UsageError(f"{option} {folder}: cannot create it under {p} (not writable)")
            return


# What the writers add to a results file's name: ``.<name>.<pid>.<8 hex>.tmp`` (models.files.temp_path_beside)
TEMP_NAME_EXTRA = 24


def check_csv_name(path: Path, hint: str = "") -> None:
    """``path`` as the name of a new results CSV: a ``.csv`` name, not there yet, short enough for the
    filesystem with the writers' temporary names (its folder is not created here).

    Raises:
        UsageError: another suffix, an existing file, or a name the filesystem cannot take.
    """
    if path.suffix != ".csv":
        raise UsageError(f"--out must name a .csv file, got {path}")
    try:
        exists = path.exists()
    except OSError as exc:  # e.g. a name longer than the filesystem allows
        raise UsageError(f"--out {str(path)[:60]}...: {exc.strerror}") from None
    if exists:
        raise UsageError(f"{path} exists; choose another --out{hint}")
    folder = next((p for p in path.parents if p.is_dir()), Path("."))
    longest = os.pathconf(folder, "PC_NAME_MAX") if hasattr(os, "pathconf") else 255
    if len(path.name.encode()) + TEMP_NAME_EXTRA > longest:
        raise UsageError(f"--out file name is {len(path.name.encode())} bytes; this filesystem takes at most "
                         f"{longest - TEMP_NAME_EXTRA} for a results file (its temporary files add {TEMP_NAME_EXTRA})")


def new_csv(path: Path, hint: str = "") -> Path:
    """``path`` checked as a new CSV to write (:func:`check_csv_name`), its folder created.

    Raises:
        UsageError: as :func:`check_csv_name`, or a folder that cannot be created.
    """
    check_csv_name(path, hint)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {path.parent}: {exc.strerror}") from None
    return path


def check_executor(executor: str) -> None:
    """``--executor``: local or ray. Raises UsageError otherwise."""
    if executor not in ("local", "ray"):
        raise UsageError(f"unknown executor {executor!r}; choose local or ray")


def only_with(active: bool, flag: str, why: str = "", **given: tuple) -> None:
    """Options that only act with ``flag`` (``name=(value, default)``), given while it is off: they
    would be ignored, bad values included (NaN differs from its default too). Raises UsageError
    naming them, then ``why``."""
    if active:
        return
    named = [f"--{k.replace('_', '-')}" for k, (v, d) in given.items() if not v == d]
    if named:
        raise UsageError(f"{', '.join(named)} only act{'s' if len(named) == 1 else ''} with {flag}{why}")


def check_ray_only(executor: str, **given: tuple) -> None:
    """Options that only act with ``--executor ray``, given with the local executor. Raises UsageError."""
    only_with(executor == "ray", "--executor ray", **given)


def check_stale_needs_models(models, onnx, allow_stale: bool) -> None:
    """``--allow-stale`` lets a registered model's export run though its checkpoint changed; with
    ``--onnx`` files alone there is no checkpoint to be stale against. Raises UsageError."""
    only_with(bool(models) or not onnx, "registered models", " (an --onnx file has no checkpoint to be stale against)",
              allow_stale=(allow_stale, False))


def check_onnx_only(onnx, layout: str, preprocess: str) -> None:
    """``--layout`` and ``--preprocess`` describe ``--onnx`` files; without one they would be ignored.
    Raises UsageError naming them."""
    only_with(bool(onnx), "--onnx", " (they describe a foreign model's input)", layout=(layout, "auto"),
              preprocess=(preprocess, "unit"))


def check_folder_path(folder: Path, label: str, hint: str = "") -> None:
    """Refuse a folder path that is a file or sits under a file (nothing could be read or written
    there), before any work. Raises UsageError ``<label>: <path> is a file, not a folder<hint>``."""
    for p in (folder, *folder.parents):
        if p.exists():
            if not p.is_dir():
                raise UsageError(f"{label}: {p} is a file, not a folder{hint}")
            return


def check_format(fmt: str) -> None:
    """``--format``: rich or markdown. Raises UsageError otherwise."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose rich or markdown")


def check_profile_given(profile: str | None) -> None:
    """``--profile`` given as an empty or blank string (which would read as "not given" and pick the
    newest profile silently). Raises UsageError."""
    if profile is not None and not profile.strip():
        raise UsageError("--profile is empty: give paper, quick or smoke (or leave --profile out for the "
                         "profile exported last)")


def at_least(value: float, minimum: float, option: str) -> None:
    """Raise UsageError ``<option> must be at least <minimum>, got <value>`` when ``value < minimum``."""
    if value < minimum:
        raise UsageError(f"{option} must be at least {minimum}, got {value}")


def accuracy_points(text: str) -> float:
    """``--max-accuracy-drop``: percentage points, ``0.2`` or ``0.2pp`` -> 0.2.

    Raises:
        UsageError: not a number.
    """
    try:
        return float(text.strip().lower().removesuffix("pp"))
    except ValueError:
        raise UsageError(f"--max-accuracy-drop takes percentage points such as 0.2pp, not {text!r}") from None
