"""Which node measured a row (issue 27, fleet identity): the ``node`` column (schema 8), and
``report``, ``compare`` and ``table`` keeping two nodes of one host name apart.

Rows are built from the schema with known figures; the two-node Ray run itself is in
``scripts/fleet_two_nodes.sh`` (a cluster of two raylets on loopback addresses is too slow to start
for the suite) and ``tests/test_ray.py`` checks the node a one-node Ray run records.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from mnistbench.bench.analysis import compare as cmp
from mnistbench.bench.analysis import htmlreport
from mnistbench.bench.analysis.report import results_markdown, summary
from mnistbench.bench.cli import app
from mnistbench.bench.measure import noiseprofile
from mnistbench.bench.measure import samples as samples_io
from mnistbench.bench.measure.records import (
    ADDED_COLUMNS,
    SCHEMA_VERSION,
    CsvAppender,
    error_record,
    node_labels,
    read_csv,
    series_node,
)
from mnistbench.bench.measure.samples import CellSamples
from mnistbench.models.errors import UsageError
from typer.testing import CliRunner

MS = 1_000_000
A = "ray:0123456789ab@127.0.0.1"
B = "ray:ba9876543210@127.0.0.2"


def row(cell_id: str, node: str, p50: float = 1.0, host: str = "vm", batch: int = 4, model: str = "m", **kw):
    r = error_record("", model=model, batch_size=batch, cell_id=cell_id, provider="cpu", runtime="onnxruntime",
                     variant="fp32", dataset="mnist", task="classify", threads_requested="1", spinning="off",
                     io_mode="end-to-end", intra_op_threads=1, host=host, node=node)
    return dataclasses.replace(r, status="ok", error="", timed_iters=10, timed_wall_s=1.0, latency_p50_ms=p50,
                               latency_p99_ms=p50 * 2, throughput_ips=batch * 1000 / p50, accuracy_top1=0.99,
                               **kw)


def blocks(center_ms: float, m: int = 8, per: int = 5) -> CellSamples:
    bl = [np.full(per, round(center_ms * (1 + 0.001 * k) * MS), np.int64) for k in range(m)]
    return CellSamples.from_blocks(bl, [int(b.sum()) for b in bl], list(range(m)))


def rset(label, rows, p50s):
    return cmp.ResultSet(label, rows, {r.cell_id: blocks(p) for r, p in zip(rows, p50s)}, [], [])


@pytest.fixture(autouse=True)
def no_between_run_spread(monkeypatch):
    monkeypatch.setattr(noiseprofile, "DEFAULT_SIGMA", 0.0)


def test_schema_8_adds_node_and_older_files_read_it_empty():
    assert SCHEMA_VERSION == 8 and ADDED_COLUMNS["node"] == ""
    old = row("c", node="")
    assert series_node(old) == "host:vm"  # schema 7 and older: keyed by host, as before
    assert series_node(row("c", node=A)) == f"{A}#vm"
    assert series_node(row("c", node=A, host="other")) != series_node(row("c", node=A))  # a cloned machine id


def test_node_id_is_the_ray_node_inside_a_task_else_the_machine(monkeypatch, tmp_path):
    monkeypatch.setenv(noiseprofile.NODE_ENV, A)
    assert noiseprofile.node_id() == A
    monkeypatch.setattr(noiseprofile, "machine_id", lambda: "0123456789abcdef" * 2)
    for bad in ("", "ray:xyz@1.2.3.4", "ray:0123456789ab", "ray:0123456789ab@" + "1" * 80, "something else"):
        monkeypatch.setenv(noiseprofile.NODE_ENV, bad)
        assert noiseprofile.node_id() == "machine:0123456789ab", bad  # malformed: ignored
    monkeypatch.delenv(noiseprofile.NODE_ENV)
    monkeypatch.setattr(noiseprofile, "machine_id", lambda: "")
    assert noiseprofile.node_id() == ""


def test_labels_add_the_ip_only_where_a_host_name_has_several_nodes():
    rows = [row("1", A), row("2", B), row("3", "machine:aaaabbbbcccc", host="other"), row("4", "", host="old")]
    assert node_labels(rows) == {f"{A}#vm": "vm@127.0.0.1", f"{B}#vm": "vm@127.0.0.2",
                                 "machine:aaaabbbbcccc#other": "other", "host:old": "old"}
    assert node_labels([row("1", "machine:aaaabbbbcccc"), row("2", "machine:ddddeeeeffff")]) == {
        "machine:aaaabbbbcccc#vm": "vm@aaaabbbb", "machine:ddddeeeeffff#vm": "vm@ddddeeee"}


def test_the_summary_table_keeps_two_nodes_of_one_host_apart():
    rows = [row("1", A, p50=1.0), row("2", B, p50=2.0)]
    header, cells = summary(rows)
    assert header[0] == "node" and len(cells) == 2
    by_node = {c[0]: c for c in cells}
    i = header.index("img/s @ b=4")
    assert by_node["vm@127.0.0.1"][i] == "4,000" and by_node["vm@127.0.0.2"][i] == "2,000"
    md = results_markdown(rows).splitlines()
    assert md[0].startswith("| node | model |") and md[1].startswith("|---|---|---|---|---|---|---:")
    one_header, one = summary([row("1", A)])
    assert one_header[0] == "model" and len(one) == 1  # one node: no node column


def test_report_series_are_keyed_by_node():
    rows = [row("1", A), row("2", B)]
    names = htmlreport.node_names(rows)
    keys = {htmlreport.series_key(r, names) for r in rows}
    assert keys == {"vm@127.0.0.1: onnxruntime/cpu/t1/spin-off", "vm@127.0.0.2: onnxruntime/cpu/t1/spin-off"}
    assert htmlreport.node_names([row("1", A), row("2", A)]) == {}
    assert htmlreport.series_key(rows[0], {}) == "onnxruntime/cpu/t1/spin-off"


def test_report_draws_two_series_for_two_nodes_of_one_host(tmp_path):
    rows = [row(f"{n[4:8]}{b}", n, p50=b * (1 if n == A else 2) / 4, batch=b) for n in (A, B) for b in (1, 4)]
    html = htmlreport.write_report(rows, tmp_path / "r", 10.0, ["x"]).read_text()
    assert "vm@127.0.0.1, vm@127.0.0.2" in html  # the hosts line names both nodes
    assert html.count("vm@127.0.0.1: onnxruntime/cpu/t1/spin-off") >= 1
    assert html.count("vm@127.0.0.2: onnxruntime/cpu/t1/spin-off") >= 1


def test_compare_of_two_fleet_runs_pairs_each_node_with_itself():
    # node A is 2x slower in the new run, node B unchanged: pooled, they would read as one 1.5x cell
    base = rset("base", [row("a1", A), row("b1", B)], [1.0, 1.0])
    new = rset("new", [row("a2", A), row("b2", B)], [2.0, 1.0])
    changes, only_b, only_n = cmp.compare(base, new, 0.02)
    assert not only_b and not only_n and len(changes) == 2
    got = {c.key[-1]: (round(c.ratio, 3), c.verdict) for c in changes}
    assert got == {"vm@127.0.0.1": (2.0, "slower"), "vm@127.0.0.2": (1.0, "no change")}
    assert all(c.key[:len(cmp.KEY)] == cmp.key(row("x", A)) for c in changes)


def test_compare_of_one_node_against_another_machine_still_pairs_them():
    base = rset("base", [row("a1", A)], [1.0])
    new = rset("new", [row("m1", "machine:aaaabbbbcccc", host="laptop")], [1.1])
    (c,), _, _ = cmp.compare(base, new, 0.02)
    assert len(c.key) == len(cmp.KEY) and round(c.ratio, 3) == 1.1


def test_compare_refuses_to_pool_nodes_that_do_not_pair():
    base = rset("base", [row("a1", A), row("b1", B)], [1.0, 1.0])
    new = rset("new", [row("a2", A)], [1.0])
    with pytest.raises(UsageError, match=r"base holds rows of 2 node\(s\) \(vm@127.0.0.1, vm@127.0.0.2\) and new of 1"):
        cmp.compare(base, new, 0.02)


def _write(folder, name, rows, p50s):
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / f"{name}.csv"
    sink = CsvAppender(csv_path)
    for r, p in zip(rows, p50s):
        samples_io.save(csv_path, r.cell_id, blocks(p))
        sink.append(r)
    (folder / f"{name}.system.json").write_text(json.dumps({"host": "vm"}))
    return csv_path


def test_the_cli_compares_two_fleet_folders_node_by_node_and_table_shows_the_nodes(tmp_path):
    """Two fleet run folders (one CSV per node, as ``run --executor ray`` writes them), both nodes of
    host ``vm``: compare gives one line per node, the gate names the node that crossed."""
    for side, slow in (("base", 1.0), ("new", 2.0)):
        _write(tmp_path / side, "vm-01234567", [row(f"{side}-a", A)], [slow])
        _write(tmp_path / side, "vm-ba987654", [row(f"{side}-b", B)], [1.0])
    res = CliRunner().invoke(app, ["compare", str(tmp_path / "base"), str(tmp_path / "new"), "--format", "markdown",
                                   "--fail-on", "p50:+10%", "--noise", "0.02"])
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("| m @ ")]
    assert len(lines) == 2 and any("m @ vm@127.0.0.1" in ln and "slower" in ln for ln in lines)
    assert any("m @ vm@127.0.0.2" in ln and "no change" in ln for ln in lines)
    assert "@ vm@127.0.0.1 crosses p50:+10%" in res.output and "vm@127.0.0.2 crosses" not in res.output
    merged = tmp_path / "merged.csv"
    sink = CsvAppender(merged)
    for p in sorted((tmp_path / "new").glob("*.csv")):
        for r in read_csv(p):
            sink.append(r)
    res = CliRunner().invoke(app, ["table", str(merged), "--format", "markdown"])
    assert res.exit_code == 0, res.output
    assert "| vm@127.0.0.1 | m |" in res.output and "| vm@127.0.0.2 | m |" in res.output


def test_rows_written_and_read_back_keep_their_node(tmp_path):
    p = _write(tmp_path, "x", [row("c", A)], [1.0])
    (back,) = read_csv(p)
    assert back.node == A and not math.isnan(back.latency_p50_ms)
