"""`compare` against damaged inputs (issue 27): a gate reads exit 1 as "slower", so every input
compare cannot read must end in exit 2 with one line, never a traceback, and exit 1 only for a real
``slower``/``faster`` past a rule.

A valid pair of results (a CSV of this schema, its per-cell samples and a real system JSON) is
damaged in seeded ways, one file at a time: byte flips, truncations, inserted bytes, cells replaced by
hostile values, header damage, JSON of the wrong type or nesting, samples of the wrong dtype, shape,
sums or container. Each damaged copy is compared against the intact side in both directions.
"""

from __future__ import annotations

import dataclasses
import io
import json
import random
import zipfile

import numpy as np
import pytest
from mnistbench.bench.cli import app
from mnistbench.bench.measure import noiseprofile
from mnistbench.bench.measure import samples as samples_io
from mnistbench.bench.measure.records import CsvAppender, error_record
from mnistbench.bench.measure.samples import CellSamples
from mnistbench.bench.measure.system import describe_system
from typer.testing import CliRunner

MS = 1_000_000
RULE = "p50:+10%"
HOSTILE_CELLS = ["", "nan", "inf", "-inf", "-1", "0", "1e309", "-1e309", "9" * 400, "x" * 200_000, "\x00", "ok",
                 "error", "\ufeff1", "1,2", '"', "\n", "1.5e-320", "True", "[]", "{}", "0x10", " 1 ", "١"]
HOSTILE_JSON = ["[]", "1", '"text"', "null", "true", '{"noise_profile": "x"}', '{"noise_profile": {"sigma_log": "a"}}',
                '{"noise_profile": {"sigma_log": 1e308, "trials": 20}}', '{"noise_profile": {"sigma_log": -1, "trials": 20}}',
                '{"noise_profile": {"sigma_log": NaN, "trials": 20}}', '{"noise_profile": []}', '{"host": 5, "cpu_model": []}',
                '{"gpus": {"a": {"b": "c"}}}', "[" * 100_000, "{" * 50_000, '{"a": "\\ud800"}', "\xff\xfe", "",
                '{"noise_profile": {"sigma_log": 0.5, "trials": 1e400}}', '{"onnxruntime": ' + "1" * 5000 + "}"]


@pytest.fixture(autouse=True)
def no_host_profile(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no stored noise profile of this host
    monkeypatch.setattr(noiseprofile, "DEFAULT_SIGMA", 0.0)


def row(cell_id, p50, batch):
    r = error_record("", model="lenet5", batch_size=batch, cell_id=cell_id, provider="cpu", runtime="onnxruntime",
                     variant="fp32", dataset="mnist", task="classify", threads_requested="1", spinning="off",
                     io_mode="end-to-end", intra_op_threads=1, host="vm", run_id="r", repeat=0)
    return dataclasses.replace(r, status="ok", error="", timed_iters=40, timed_wall_s=1.0, latency_p50_ms=p50,
                               latency_p99_ms=p50 * 2, throughput_ips=batch * 1000 / p50, accuracy_top1=0.99,
                               rounds=8)


def write_side(folder, center_ms):
    """One results CSV of two cells (batch 1 and 8), each with 8 blocks of 5 calls, and a system JSON."""
    folder.mkdir(parents=True)
    csv_path = folder / "run.csv"
    sink = CsvAppender(csv_path)
    for batch in (1, 8):
        cid = f"c{batch}-{folder.name}"
        bl = [np.full(5, round(center_ms * batch * (1 + 0.002 * k) * MS), np.int64) for k in range(8)]
        samples_io.save(csv_path, cid, CellSamples.from_blocks(bl, [int(b.sum()) for b in bl], list(range(8))))
        sink.append(row(cid, center_ms * batch, batch))
    csv_path.with_suffix(".system.json").write_text(json.dumps(describe_system()))
    return csv_path


def compare(a, b):
    return CliRunner().invoke(app, ["compare", str(a), str(b), "--fail-on", RULE, "--noise", "0.02"])


def check(res, what):
    """Exit 0 (still readable, no change), 2 (one line), or 1 only with a gate line naming a real change."""
    assert res.exception is None or isinstance(res.exception, SystemExit), f"{what}: {res.exception!r}"
    assert "Traceback" not in res.output, what
    assert res.exit_code in (0, 1, 2), (what, res.exit_code, res.output[-500:])
    if res.exit_code == 2:
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mnistbench: error:"), (what, res.stderr[-500:])
    if res.exit_code == 1:
        assert "crosses p50:+10%" in res.stderr and ("slower" in res.stderr or "faster" in res.stderr), (what, res.output)
    return res.exit_code


@pytest.fixture()
def pair(tmp_path):
    return write_side(tmp_path / "a", 1.0), write_side(tmp_path / "b", 1.0)


def test_the_intact_pair_passes_and_a_real_slowdown_is_the_only_exit_1(pair, tmp_path):
    a, b = pair
    assert compare(a, b).exit_code == 0
    slow = write_side(tmp_path / "slow", 1.5)
    res = compare(a, slow)
    assert check(res, "real slowdown") == 1


def _damage_csv(text: str, rng: random.Random) -> bytes:
    lines = text.splitlines(keepends=True)
    kind = rng.randrange(8)
    if kind == 0:  # flip bytes
        b = bytearray(text.encode())
        for _ in range(rng.randint(1, 6)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if kind == 1:  # truncate anywhere
        return text.encode()[:rng.randrange(len(text))]
    if kind == 2:  # a hostile value in a random cell of a data row
        i = rng.randrange(1, len(lines))
        cells = lines[i].rstrip("\r\n").split(",")
        cells[rng.randrange(len(cells))] = rng.choice(HOSTILE_CELLS)
        lines[i] = ",".join(cells) + "\n"
        return "".join(lines).encode()
    if kind == 3:  # header damage: drop, duplicate or rename a column
        head = lines[0].rstrip("\r\n").split(",")
        j = rng.randrange(len(head))
        op = rng.randrange(3)
        if op == 0:
            del head[j]
        elif op == 1:
            head.insert(j, head[j])
        else:
            head[j] = head[j] + "_x"
        return (",".join(head) + "\n" + "".join(lines[1:])).encode()
    if kind == 4:  # inserted random bytes
        b = text.encode()
        at = rng.randrange(len(b))
        return b[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 40))) + b[at:]
    if kind == 5:  # another encoding
        return text.encode(rng.choice(["utf-16", "utf-32", "latin-1"]))
    if kind == 6:  # a row duplicated, or the rows gone
        return (text + lines[-1]).encode() if rng.random() < 0.5 else lines[0].encode()
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 3000)))  # garbage


def _damage_npz(path, rng: random.Random) -> None:
    data = path.read_bytes()
    kind = rng.randrange(7)
    if kind == 0:
        b = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        path.write_bytes(bytes(b))
        return
    if kind == 1:
        path.write_bytes(data[:rng.randrange(len(data))])
        return
    with np.load(io.BytesIO(data)) as z:
        arrays = {k: z[k] for k in z.files}
    key = rng.choice(sorted(arrays))
    if kind == 2:  # wrong dtype
        arrays[key] = arrays[key].astype(rng.choice([np.float64, np.float32, np.int8, np.uint64, np.bool_]))
    elif kind == 3:  # wrong shape
        arrays[key] = rng.choice([arrays[key].reshape(1, -1), arrays[key][:0], arrays[key][:-1], np.array(5)])
    elif kind == 4:  # hostile values that keep the dtype
        a = arrays[key].copy()
        a[rng.randrange(len(a))] = rng.choice([-1, 0, np.iinfo(np.int64).max, np.iinfo(np.int64).min])
        arrays[key] = a
    elif kind == 5:  # an array missing, or an extra one
        if rng.random() < 0.5:
            del arrays[key]
        else:
            arrays["extra"] = np.arange(3)
    if kind == 6:  # an object array (a pickle) or a zip that is not an npz
        buf = io.BytesIO()
        if rng.random() < 0.5:
            np.savez(buf, **{**arrays, key: np.array([{"a": 1}], dtype=object)})
        else:
            with zipfile.ZipFile(buf, "w") as zf:
                zf.writestr("ns.npy", b"not an array")
        path.write_bytes(buf.getvalue())
        return
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())


@pytest.mark.parametrize("seed", range(4))
def test_damaged_csvs_never_read_as_a_slowdown(pair, seed):
    a, b = pair
    original = a.read_text()
    rng = random.Random(1000 + seed)
    codes = []
    for i in range(40):
        a.write_bytes(_damage_csv(original, rng))
        codes.append(check(compare(a, b), f"csv seed {seed} case {i}"))
        codes.append(check(compare(b, a), f"csv seed {seed} case {i} reversed"))
    assert codes.count(2) >= len(codes) // 2  # most damage is refused, not silently read


def test_system_jsons_of_every_wrong_shape_never_read_as_a_slowdown(pair):
    a, b = pair
    sj = a.with_suffix(".system.json")
    for i, text in enumerate(HOSTILE_JSON):
        sj.write_bytes(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
        check(compare(a, b), f"system json {i}: {text[:40]!r}")
        check(compare(b, a), f"system json {i} reversed")
    sj.unlink()
    sj.mkdir()  # a folder where the file should be
    assert check(compare(a, b), "system json folder") == 2


@pytest.mark.parametrize("seed", range(3))
def test_damaged_samples_never_read_as_a_slowdown(pair, seed):
    a, b = pair
    rng = random.Random(2000 + seed)
    files = sorted(samples_io.folder_for(a).glob("*.npz"))
    originals = {f: f.read_bytes() for f in files}
    codes = []
    for i in range(30):
        for f, data in originals.items():
            f.write_bytes(data)
        _damage_npz(rng.choice(files), rng)
        codes.append(check(compare(a, b), f"samples seed {seed} case {i}"))
        codes.append(check(compare(b, a), f"samples seed {seed} case {i} reversed"))
    assert codes.count(2) >= len(codes) // 3


def test_a_samples_folder_entry_that_is_a_folder_or_unreadable_is_exit_2(pair):
    a, b = pair
    f = sorted(samples_io.folder_for(a).glob("*.npz"))[0]
    f.unlink()
    f.mkdir()
    assert check(compare(a, b), "samples entry is a folder") == 2
    f.rmdir()
    f.write_bytes(b"")
    assert check(compare(a, b), "empty samples file") == 2


def test_a_gate_with_nothing_to_judge_is_exit_2_not_a_pass(pair):
    a, b = pair
    for rules in ("", ",", " , "):
        res = CliRunner().invoke(app, ["compare", str(a), str(b), "--fail-on", rules])
        assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1, (rules, res.output)
