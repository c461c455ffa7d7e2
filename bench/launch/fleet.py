"""The fleet side of ``run --executor ray`` that needs no Ray: checking a cluster address before
``ray.init``, and what the driver reports and records of each node's run (``fleet.json``)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from ...models.errors import MnistBenchError, UsageError
from ...models.files import atomic_write_bytes

if TYPE_CHECKING:
    from .ray_executor import NodeResult

CONNECT_TIMEOUT_S = 3.0  # a TCP connect to a live Ray head on a LAN takes milliseconds


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse a ``HOST:PORT`` Ray address nothing answers on, with a short TCP connect, before
    ``ray.init`` (which retries for minutes). ``auto`` and ``ray://`` addresses are left to Ray.

    Raises:
        UsageError: not HOST:PORT with a port in 1..65535, or no connection within ``timeout_s``.
    """
    if address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise UsageError(f"--address takes HOST:PORT (as `ray start --head` prints it) or auto, got {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise UsageError(f"cannot connect to the Ray cluster at {address}: nothing answers there "
                         f"({exc.strerror or type(exc).__name__}, {timeout_s:g} s TCP connect)") from None


def describe(results: list[NodeResult], folder: Path) -> str:
    """One line per node: rows gathered, or why it failed."""
    lines = []
    for r in results:
        csvs = [f for f in r.files if f.endswith(".csv")]
        state = "ok" if r.returncode == 0 else f"failed (exit {r.returncode}): {r.log}"
        lines.append(f"{r.key}: {state}; {len(r.files)} file(s)" + (f" -> {folder / csvs[0]}" if csvs else ""))
    return "\n".join(lines)


def manifest(folder: Path, config: dict, results: list[NodeResult]) -> None:
    """``<run-id>/fleet.json``: the run configuration given to every node and each node's outcome
    (key, host name, Ray node id and IP, exit code, error line, files)."""
    atomic_write_bytes(folder / "fleet.json", json.dumps({
        "run_id": folder.name, "config": config,
        "nodes": [{"key": r.key, "host": r.host, "node_id": r.node_id, "ip": r.ip, "returncode": r.returncode,
                   "log": r.log, "files": r.files}
                  for r in results]}, indent=2).encode())


def check_failures(results: list[NodeResult]) -> None:
    """Raises MnistBenchError naming the first failed node, if any failed."""
    bad = [r for r in results if r.returncode != 0]
    if bad:
        raise MnistBenchError(f"{len(bad)} of {len(results)} node(s) failed; first: {bad[0].key}: {bad[0].log}")


def onnx_bundle(paths: tuple[Path, ...]) -> dict[str, bytes]:
    """The bytes of each ``--onnx`` file and of the external data files it names, keyed
    ``<i>/<name>`` (``i``: its place among ``paths``, so two files of one name stay apart), read on
    the driver so that a file that exists only there is measured on every node.

    Raises:
        UsageError: a file (or a data file it names) that cannot be read.
    """
    import onnx

    out = {}
    for i, p in enumerate(paths):
        p = Path(p)
        try:
            proto = onnx.load(str(p), load_external_data=False)
            out[f"{i}/{p.name}"] = p.read_bytes()
            for name in sorted({e.value for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
                                for e in t.external_data if e.key == "location"}):
                out[f"{i}/{name}"] = (p.parent / name).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {exc.filename or p} to send it to the nodes: {exc.strerror}") from None
        except Exception as exc:  # noqa: BLE001  (onnx raises DecodeError, ValueError, ... for bad bytes)
            raise UsageError(f"{p} is not a readable ONNX model: {type(exc).__name__}") from None
    return out


def write_bundle(models: dict[str, bytes], folder: Path, onnx: list[str]) -> list[str]:
    """Write :func:`onnx_bundle`'s files under ``folder`` (on a node); returns the paths the run's
    ``onnx`` list then names, in its order."""
    for rel, data in models.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return [str(folder / str(i) / Path(p).name) for i, p in enumerate(onnx)]
