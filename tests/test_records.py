"""The results CSV (bench/measure/records.py): round trips of measured, empty and error rows, the
header of a new or empty file, refusals of files that must not be extended or read, config ids, the
writer lock.

These tests pin exact values (schema version, columns, messages); they were written to kill the
survivors of mutation testing (issue 19, scripts/mutation.py). Result files under real processes,
faults and concurrency are in tests/test_results_integrity.py.
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import hashlib
import math

import pytest
from mnistbench.bench.measure import records
from mnistbench.bench.measure.records import (
    ADDED_COLUMNS,
    COLUMNS,
    IDENTITY_FIELDS,
    SCHEMA_VERSION,
    BenchmarkRecord,
    CsvAppender,
    config_id,
    error_record,
    read_csv,
    writer_lock,
)
from mnistbench.models.errors import UsageError


def measured(**kw) -> BenchmarkRecord:
    r = error_record("", model="lenet5", batch_size=32, cell_id="run-r0-0000", provider="cpu", threads_requested="1")
    values = dict(status="ok", error="", timed_iters=640, timed_wall_s=1.25, latency_mean_ms=1.5,
                  latency_std_ms=0.25, latency_min_ms=1.0, latency_p50_ms=1.4, latency_p90_ms=2.0,
                  latency_p99_ms=math.nan, latency_max_ms=9.0, latency_cv=1 / 6, throughput_ips=16384.0,
                  accuracy_top1=0.9912, max_abs_diff_vs_torch=3.5e-6, warmup_iters=20, rounds=16, repeat=2,
                  intra_op_threads=1, flops_per_image=1_000_000, latency_p50_ci_low_ms=1.3,
                  latency_p50_ci_high_ms=1.5, group_cells=4, interleave_group="1/1")
    values.update(kw)
    return dataclasses.replace(r, **values)


def same(a: BenchmarkRecord, b: BenchmarkRecord) -> bool:
    """Equal field by field, NaN equal to NaN."""
    return a.as_row() == b.as_row()


def test_schema_version_and_added_columns():
    assert SCHEMA_VERSION == 8
    assert BenchmarkRecord.__dataclass_fields__["schema_version"].default == 8
    assert COLUMNS[:3] == ["run_id", "cell_id", "repeat"] and COLUMNS[-5:] == ["config_id", "nonfinite_fraction",
                                                                              "peak_rss_mib", "session_rss_mib", "node"]
    assert ADDED_COLUMNS["io_mode"] == "end-to-end" and ADDED_COLUMNS["rounds"] == 1
    assert ADDED_COLUMNS["group_cells"] == 1 and math.isnan(ADDED_COLUMNS["latency_p50_ci_low_ms"])
    assert math.isnan(ADDED_COLUMNS["nonfinite_fraction"])  # schema 6
    assert math.isnan(ADDED_COLUMNS["peak_rss_mib"]) and math.isnan(ADDED_COLUMNS["session_rss_mib"])  # schema 7
    assert ADDED_COLUMNS["node"] == ""  # schema 8
    assert set(ADDED_COLUMNS) <= set(COLUMNS)


def test_as_row_writes_nan_as_an_empty_cell():
    row = measured().as_row()
    assert row["latency_p99_ms"] == "" and row["latency_p50_ms"] == 1.4 and row["timed_iters"] == 640
    assert list(row) == COLUMNS


def test_round_trip_of_measured_and_error_rows(tmp_path):
    p = tmp_path / "r.csv"
    ok, err = measured(), error_record("session failed:\nout of memory", model="lenet5", batch_size=512,
                                        cell_id="run-r0-0001", provider="cpu")
    app = CsvAppender(p)
    app.append(ok)
    app.append(err)
    back = read_csv(p)
    assert len(back) == 2
    assert same(back[0], ok) and same(back[1], err)
    assert back[0].latency_cv == pytest.approx(1 / 6) and back[0].max_abs_diff_vs_torch == 3.5e-6
    assert math.isnan(back[0].latency_p99_ms)
    with open(p, newline="") as fh:
        lines = list(csv.reader(fh))
    assert lines[0] == COLUMNS and len(lines) == 3  # one header, then the rows


def test_error_row_fill_values():
    e = error_record("a\nb", model="m", batch_size=8, cell_id="c", repeat=1)
    assert (e.status, e.error, e.model, e.batch_size, e.cell_id, e.repeat) == ("error", "a b", "m", 8, "c", 1)
    assert math.isnan(e.latency_p50_ms) and math.isnan(e.throughput_ips) and math.isnan(e.accuracy_top1)
    assert (e.timed_iters, e.warmup_iters, e.nodes_total, e.opset, e.group_cells) == (-1, -1, -1, -1, -1)
    assert e.rounds == -1  # "-1" like every int measurement (records.error_record's setdefault(0) never applies)
    assert (e.host, e.io_mode, e.provider_options) == ("", "", "")
    assert e.schema_version == SCHEMA_VERSION
    assert e.config_id == config_id(dataclasses.asdict(e))
    assert error_record("x", model="m", config_id="given").config_id == "given"
    assert error_record("x", model="m", rounds=3).rounds == 3


def test_config_id_is_the_documented_hash_of_the_identity_fields():
    v = {k: f"v-{k}" for k in IDENTITY_FIELDS}
    text = "|".join(f"{k}=v-{k}" for k in IDENTITY_FIELDS) + "|schema=8"
    assert config_id(v) == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert len(config_id({})) == 16
    for k in IDENTITY_FIELDS:
        assert config_id(dict(v, **{k: "other"})) != config_id(v), k
    assert config_id(dict(v, run_id="a", cell_id="b", host="h", timestamp_utc="t")) == config_id(v)
    assert "repeat" in IDENTITY_FIELDS and "pinned_cpus" in IDENTITY_FIELDS and "batch_size" in IDENTITY_FIELDS


def test_an_existing_empty_file_gets_the_header(tmp_path):
    p = tmp_path / "r.csv"
    p.touch()
    app = CsvAppender(p)
    app.check_appendable()
    app.append(measured())
    app.append(measured(cell_id="run-r0-0002"))
    assert p.read_text().count("run_id,cell_id") == 1
    assert [r.cell_id for r in read_csv(p)] == ["run-r0-0000", "run-r0-0002"]


def test_a_header_only_file_reads_as_no_rows(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text(",".join(COLUMNS) + "\n")
    CsvAppender(p).check_appendable()
    assert read_csv(p) == []


def test_custom_fieldnames(tmp_path):
    p = tmp_path / "x.csv"
    app = CsvAppender(p, ["a", "b"])
    app.append_row({"a": 1, "b": "two"})
    app.append_row({"a": 3, "b": ""})
    assert p.read_text() == "a,b\n1,two\n3,\n"
    app.check_appendable()


def test_files_that_must_not_be_extended(tmp_path):
    p = tmp_path / "r.csv"
    CsvAppender(p).check_appendable()  # absent is fine
    p.write_text(",".join(COLUMNS[:-3]) + "\n")
    with pytest.raises(UsageError, match="an older schema"):
        CsvAppender(p).check_appendable()
    p.write_text("model,speed\nx,1\n")
    with pytest.raises(UsageError, match="another kind of CSV"):
        CsvAppender(p).check_appendable()
    app = CsvAppender(p)
    p.unlink()
    app.append(measured())
    with open(p, "a") as fh:
        fh.write("run-x,half a row")
    with pytest.raises(UsageError, match="partial row"):
        app.check_appendable()


def test_a_full_disk_takes_back_the_partial_row(tmp_path, monkeypatch):
    p = tmp_path / "r.csv"
    app = CsvAppender(p)
    app.append(measured())
    before = p.read_bytes()
    real = records.os.write

    def half_then_full(fd, data):
        if len(data) > 10:
            return real(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(records.os, "write", half_then_full)
    with pytest.raises(OSError):
        app.append(measured(cell_id="run-r0-0009"))
    monkeypatch.undo()
    assert p.read_bytes() == before
    assert [r.cell_id for r in read_csv(p)] == ["run-r0-0000"]


def test_reading_an_older_schema_fills_the_added_columns(tmp_path):
    p = tmp_path / "old.csv"
    old_cols = [c for c in COLUMNS if c not in ADDED_COLUMNS]
    row = measured().as_row()
    with open(p, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=old_cols, extrasaction="ignore")
        w.writeheader()
        w.writerow(row)
    (r,) = read_csv(p)
    assert (r.io_mode, r.rounds, r.group_cells, r.config_id, r.provider_options) == ("end-to-end", 1, 1, "", "")
    assert math.isnan(r.latency_p50_ci_low_ms)
    assert r.latency_p50_ms == 1.4


def _write(p, rows):
    with open(p, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow(r.as_row())


@pytest.mark.parametrize("bad", [dict(latency_p50_ms=math.nan), dict(latency_p50_ms=-0.001),
                                 dict(throughput_ips=math.inf), dict(timed_wall_s=math.nan),
                                 dict(timed_wall_s=-1.0), dict(timed_iters=0), dict(throughput_ips=-5.0)])
def test_a_measured_row_needs_finite_figures(tmp_path, bad):
    p = tmp_path / "r.csv"
    _write(p, [measured(), measured(**bad)])
    with pytest.raises(UsageError, match="line 3"):
        read_csv(p)


def test_tiny_figures_and_error_rows_are_readable_and_zero_timing_is_refused(tmp_path):
    p = tmp_path / "r.csv"
    _write(p, [measured(latency_p50_ms=1e-6, throughput_ips=1e-3, timed_wall_s=1e-6, timed_iters=1),
               error_record("x", model="m")])
    assert [r.status for r in read_csv(p)] == ["ok", "error"]
    _write(p, [measured(latency_p50_ms=0.0, throughput_ips=0.0, timed_wall_s=0.0, timed_iters=1)])
    with pytest.raises(UsageError, match="line 2: .*finite and positive"):
        read_csv(p)  # no timed call takes 0 ns: a zero is a damaged or hand-made row


def test_files_that_cannot_be_read(tmp_path):
    with pytest.raises(UsageError, match="cannot read"):
        read_csv(tmp_path / "absent.csv")
    p = tmp_path / "foreign.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(UsageError, match="missing columns"):
        read_csv(p)
    p.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(UsageError, match="not a text CSV"):
        read_csv(p)
    _write(p, [measured()])
    with open(p, "a") as fh:
        fh.write("only,three,cells\n")
    with pytest.raises(UsageError, match="line 3: the row has fewer cells"):
        read_csv(p)
    _write(p, [measured()])
    text = p.read_text().replace(",640,", ",six hundred,")
    p.write_text(text)
    with pytest.raises(UsageError, match="line 2: a cell does not parse"):
        read_csv(p)


def test_one_writer_at_a_time(tmp_path):
    p = tmp_path / "r.csv"
    with writer_lock(p):
        with pytest.raises(UsageError, match="another mnistbench process"):
            with writer_lock(p):
                pass
    with writer_lock(p):  # released
        pass


def test_dataclass_defaults_are_what_older_files_mean():
    """A field added after schema 3 defaults to the value :data:`ADDED_COLUMNS` gives older files."""
    defaults = {f: BenchmarkRecord.__dataclass_fields__[f].default for f in ADDED_COLUMNS}
    for f, v in ADDED_COLUMNS.items():
        d = defaults[f]
        assert (isinstance(v, float) and math.isnan(v) and math.isnan(d)) or d == v, f
    assert (BenchmarkRecord.__dataclass_fields__["status"].default,
            BenchmarkRecord.__dataclass_fields__["error"].default) == ("ok", "")


def test_refusal_messages_name_the_columns(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text(",".join(COLUMNS[:-5] + ["x1", "x2", "x3", "x4"]) + "\n")
    with pytest.raises(UsageError, match=r"another kind of CSV: missing config_id, nonfinite_fraction, peak_rss_mib, extra x1, x2, x3\)"):
        CsvAppender(p).check_appendable()
    p.write_text(",".join(COLUMNS[7:]) + "\n")
    with pytest.raises(UsageError, match=r"missing columns run_id, cell_id, repeat, timestamp_utc, host and 2 more$"):
        read_csv(p)
    p.write_text(",".join(COLUMNS[6:]) + "\n")
    with pytest.raises(UsageError, match=r"missing columns run_id, cell_id, repeat, timestamp_utc, host and 1 more$"):
        read_csv(p)
    p.write_text(",".join(COLUMNS[5:]) + "\n")
    with pytest.raises(UsageError, match=r"missing columns run_id, cell_id, repeat, timestamp_utc, host$"):
        read_csv(p)
    p.write_text(",".join(c for c in COLUMNS if c != "model") + "\n")
    with pytest.raises(UsageError, match=r"missing columns model$"):
        read_csv(p)


def test_a_reordered_header_is_another_kind_of_csv(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text(",".join(reversed(COLUMNS)) + "\n")
    with pytest.raises(UsageError, match="another kind of CSV: missing -, extra -"):
        CsvAppender(p).check_appendable()


def test_a_new_results_file_is_readable_by_others(tmp_path):
    """Created rw-r--r-- (less the umask), like any file the user writes."""
    import os

    p = tmp_path / "r.csv"
    CsvAppender(p).append(measured())
    umask = os.umask(0)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o644 & ~umask
