"""``--executor ray``: reproduction sweeps and fleet benchmarks on a Ray cluster.

Imported only when a command is given ``--executor ray``; Ray itself (the optional extra
``[ray]``) is imported by :func:`connect`, and its absence is one :class:`UsageError` line.

* :meth:`RayCluster.reproduce`: each planned training run is one Ray task (``num_cpus`` per
  run, one GPU per run when training on CUDA). A task trains into a temporary folder of its
  worker (with one torch thread per CPU it holds) and returns its CSV row and the bytes of its checkpoint files; the driver alone
  appends the rows to the runs CSV (fsynced per row, in completion order) and writes the
  checkpoints atomically under its own artifacts folder, so no shared filesystem is needed.
  A worker that dies (crash, out of memory, lost node) is retried ``max_retries`` times by
  Ray; then, like an exception raised by the training itself (not retried: it would fail
  again), it becomes an error row and the sweep goes on.
* :meth:`RayCluster.run_on_nodes`: the ``run`` benchmark matrix once per selected node, as
  one task pinned to that node (``NodeAffinitySchedulingStrategy``, hard) that claims all of
  the node's CPUs and GPUs, so nothing else Ray schedules runs beside it. The task receives the
  run configuration as data (``RunRequest.to_dict``), runs it in a fresh process on the node
  (:func:`.process.run_in_fresh_process`) and returns the files it wrote
  beside its CSV (the CSV, ``<stem>.system.json``, the raw samples), which the driver writes
  under ``<results-dir>/<run-id>/`` with the host as the stem. Each node's run is told which node
  it is (:data:`noiseprofile.NODE_ENV`: ``ray:<node id>@<IP>``), so its rows' ``node`` keeps two
  nodes of one host name apart, and ``fleet.json`` records the node id and IP. ``--onnx`` files
  (with their external data) are read on the driver and travel with the task through Ray's object
  store (:func:`onnx_bundle`): a file that exists only on the driver is measured on every node.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ...models.data import Dataset
from ...models.errors import UsageError
from ...models.files import atomic_write_bytes
from ..measure.config import RunRequest
from ..measure.noiseprofile import NODE_ENV
from ..measure.records import CsvAppender
from ..runtimes.runtime import first_line
from ..training import reproduce as rp
from .fleet import check_failures, check_reachable, describe, manifest, onnx_bundle, write_bundle  # noqa: F401
from .process import run_in_fresh_process

# The local cluster started when no --address is given: small enough to share a laptop or CI box.
LOCAL_CPUS = 2
LOCAL_OBJECT_STORE_BYTES = 200 * 1024**2
INSTALL_HINT = 'pip install -e ".[ray]"'
# Test hook (fault injection), read on the driver and passed to every task:
# "<experiment>/<model>/<seed>:<times>[,...]" makes the first <times> attempts of that run kill
# their worker with os._exit(1); attempts are counted in files under MNISTBENCH_RAY_FAULT_DIR.
FAULT_ENV = "MNISTBENCH_RAY_FAULT"
FAULT_DIR_ENV = "MNISTBENCH_RAY_FAULT_DIR"
# Environment passed from the driver to each node's run (paths are the same on
# every node: a shared filesystem or the same layout).
_PASS_ENV = ("MNISTBENCH_DATA", "MNISTBENCH_ARTIFACTS")


def _import_ray():
    try:
        import ray  # optional extra [ray]: imported only for --executor ray
    except ImportError:
        raise UsageError(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


class RayCluster:
    """A connection to a Ray cluster: the one at ``address`` (``ray start --head`` prints it;
    ``auto`` finds a local one), else a new local cluster of :data:`LOCAL_CPUS` CPUs.

    Use as a context manager; a cluster started here is shut down on exit. When Ray is
    already initialised in this process (tests, notebooks) that connection is used and kept.

    Raises:
        UsageError: Ray is not installed; the address cannot be reached.
    """

    def __init__(self, address: str | None = None) -> None:
        self.ray = ray = _import_ray()
        self.owned = not ray.is_initialized()
        if not self.owned:
            return
        quiet = dict(log_to_driver=False, logging_level=logging.ERROR)
        if address:
            check_reachable(address)
        try:
            if address:
                ray.init(address=address, **quiet)
            else:
                ray.init(num_cpus=LOCAL_CPUS, num_gpus=torch.cuda.device_count(), include_dashboard=False,
                         object_store_memory=LOCAL_OBJECT_STORE_BYTES, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
            raise UsageError(f"cannot connect to {where}: {first_line(exc)}") from None

    def __enter__(self) -> "RayCluster":
        return self

    def __exit__(self, *exc) -> None:
        if self.owned:
            self.ray.shutdown()

    # ------------------------------------------------------------------------------------ nodes

    def alive_nodes(self) -> list[dict]:
        """``ray.nodes()`` entries of the live nodes, ordered by host name then node id."""
        nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        return sorted(nodes, key=lambda n: (n["NodeManagerHostname"], n["NodeID"]))

    def device(self, requested: str) -> torch.device:
        """The training device of a sweep: ``auto`` is CUDA when the cluster has GPUs.

        Raises:
            UsageError: ``cuda`` on a cluster without GPUs; an unknown name.
        """
        gpus = self.ray.cluster_resources().get("GPU", 0)
        if requested == "auto":
            return torch.device("cuda" if gpus else "cpu")
        if requested == "cuda" and not gpus:
            raise UsageError("--device cuda: the Ray cluster has no GPU")
        if requested not in ("cpu", "cuda"):
            raise UsageError(f"unknown device {requested!r}; choose auto, cpu or cuda")
        return torch.device(requested)

    def select_nodes(self, spec: str) -> list[dict]:
        """Nodes chosen by ``--nodes``: ``all``; ``N`` (the first N by host name); or
        ``label=KEY=VALUE`` (nodes started with ``ray start --labels '{"KEY": "VALUE"}'``).

        Raises:
            UsageError: a malformed spec; more nodes asked for than are alive; no node with the label.
        """
        nodes = self.alive_nodes()
        if spec == "all":
            return nodes
        if spec.isdigit():
            n = int(spec)
            if not 1 <= n <= len(nodes):
                raise UsageError(f"--nodes {n}: the cluster has {len(nodes)} live node(s)")
            return nodes[:n]
        if spec.startswith("label=") and "=" in spec[len("label="):]:
            key, value = spec[len("label="):].split("=", 1)
            hits = [n for n in nodes if (n.get("Labels") or {}).get(key) == value]
            if not hits:
                raise UsageError(f"--nodes {spec}: no live node has label {key}={value}")
            return hits
        raise UsageError(f"--nodes must be all, a count or label=KEY=VALUE, got {spec!r}")

    # -------------------------------------------------------------------------------- reproduce

    def check_cpus_per_run(self, cpus_per_run: float) -> None:
        """Raises UsageError unless some live node has ``cpus_per_run`` CPUs (else the tasks
        would wait forever to be scheduled)."""
        if cpus_per_run <= 0:
            raise UsageError(f"--cpus-per-run must be positive, got {cpus_per_run}")
        biggest = max((n.get("Resources", {}).get("CPU", 0) for n in self.alive_nodes()), default=0)
        if cpus_per_run > biggest:
            raise UsageError(f"--cpus-per-run {cpus_per_run:g}: no node of the Ray cluster has that many CPUs "
                             f"(the largest has {biggest:g})")

    def reproduce(self, runs: list[rp.PlannedRun], data: Dataset, device: torch.device, sink: CsvAppender,
                  artifacts_root: Path | None, *, max_retries: int = 2, cpus_per_run: float = 2,
                  on_done: Callable[[dict], None] | None = None, commit: str = "") -> list[dict]:
        """Train ``runs`` as Ray tasks; append each row to ``sink`` as it comes back.

        Returns the rows in completion order (error rows included). The dataset is put once
        into the object store (about 55 MB for MNIST) and shared by every task.

        Raises:
            UsageError: ``max_retries`` below 0; ``cpus_per_run`` not positive, or more than any
                live node has (the tasks could never be scheduled).
            KeyboardInterrupt: after cancelling the tasks still running (finished rows stay in the CSV).
        """
        if max_retries < 0:
            raise UsageError(f"--max-retries must be at least 0, got {max_retries}")
        self.check_cpus_per_run(cpus_per_run)
        ray = self.ray
        gpus = 1 if device.type == "cuda" else 0
        task = ray.remote(_train_one).options(num_cpus=cpus_per_run, num_gpus=gpus, max_retries=max_retries,
                                              retry_exceptions=False)
        fault = os.environ.get(FAULT_ENV, ""), os.environ.get(FAULT_DIR_ENV, "")
        data_ref = ray.put(data)
        threads = max(1, int(cpus_per_run))
        pending = {task.remote(run, data_ref, device.type, threads, commit, fault): run for run in runs}
        done = []
        with _cancel_on_error(ray, pending):
            while pending:
                ref, run = _next_done(ray, pending)
                try:
                    row, files = ray.get(ref)
                    if artifacts_root is not None:
                        for rel, blob in files.items():
                            atomic_write_bytes(artifacts_root / rel, blob)
                except ray.exceptions.RayTaskError as exc:  # the training raised: deterministic, not retried
                    cause = exc.cause if exc.cause is not None else exc
                    row = rp.error_row(run, data.name, f"{type(cause).__name__}: {first_line(cause)}", commit)
                except ray.exceptions.RayError as exc:  # the worker or its node died, after the retries
                    row = rp.error_row(run, data.name, f"{type(exc).__name__} (after {max_retries} "
                                       f"retries): {first_line(exc)}", commit)
                sink.append_row(row)
                done.append(row)
                if on_done:
                    on_done(row)
        return done

    # ---------------------------------------------------------------------------------- fleet

    def run_on_nodes(self, nodes: list[dict], config: dict, results_dir: Path,
                     on_done: Callable[["NodeResult"], None] | None = None,
                     models: dict[str, bytes] | None = None) -> tuple[Path, list["NodeResult"]]:
        """Run the run configuration ``config`` (``RunRequest.to_dict``) once on each node, one task per node holding all of its
        CPUs and GPUs; write each node's files as ``<results_dir>/<run-id>/<host>.*``.

        Returns the run folder and one :class:`NodeResult` per node (in completion order).
        A node whose command fails keeps whatever files it wrote (error rows included). ``models``
        (:func:`onnx_bundle`): the ``--onnx`` files' bytes, put once into the object store and written on
        each node before its run.

        Raises:
            UsageError: the results folder cannot be created.
            KeyboardInterrupt: after cancelling the tasks still running.
        """
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ray = self.ray
        run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
        folder = results_dir / run_id
        try:
            folder.mkdir(parents=True)
        except OSError as exc:
            raise UsageError(f"cannot create {folder}: {exc.strerror}") from None
        hosts = [n["NodeManagerHostname"] for n in nodes]
        by_key = {}
        env = {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
        pending = {}
        bundle = ray.put(models or {})
        for node in nodes:
            host = node["NodeManagerHostname"]
            key = host if hosts.count(host) == 1 else f"{host}-{node['NodeID'][:8]}"
            by_key[key] = node
            res = node.get("Resources", {})
            task = ray.remote(_bench_on_node).options(
                num_cpus=res.get("CPU", 0), num_gpus=res.get("GPU", 0), max_retries=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
            pending[task.remote(config, key, os.getcwd(), env, bundle)] = key
        results = []
        with _cancel_on_error(ray, pending):
            while pending:
                ref, key = _next_done(ray, pending)
                node = by_key[key]
                try:
                    rc, host, log, files = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    rc, host, log, files = -1, key, f"{type(exc).__name__}: {first_line(exc)}", {}
                _write_gathered(folder, key, files)
                r = NodeResult(key, host, rc, log, sorted(files), node["NodeID"], node.get("NodeManagerAddress", ""))
                results.append(r)
                if on_done:
                    on_done(r)
        return folder, results


@dataclass
class NodeResult:
    """One node's benchmark: its key (the file stem), host name, exit code of the run (as ``mnistbench
    run``'s; -1 when the task itself died), the error's line, the files gathered, and the node's Ray
    node id and IP address."""

    key: str
    host: str
    returncode: int
    log: str
    files: list[str]
    node_id: str = ""
    ip: str = ""


def _next_done(ray, pending: dict) -> tuple:
    """Wait for the next finished task of ``pending`` (ref -> what it is for); removes and returns it."""
    (ref,), _ = ray.wait(list(pending), num_returns=1)
    return ref, pending.pop(ref)


@contextlib.contextmanager
def _cancel_on_error(ray, pending: dict):
    """On any error or Ctrl-C in the block, cancel the tasks still in ``pending``, then re-raise."""
    try:
        yield
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise


def node_request(req: RunRequest) -> RunRequest:
    """``req`` as each node runs it: its paths made absolute (the same layout on every node), the
    driver's own settings (``out_path``, ``resume``, ``results_dir``, ``repeat_index``) cleared."""
    absolute = lambda p: None if p is None else Path(p).resolve()  # noqa: E731
    return dataclasses.replace(req, onnx=tuple(Path(p).resolve() for p in req.onnx), data_dir=absolute(req.data_dir),
                               artifacts_dir=absolute(req.artifacts_dir), out_path=None, resume=False)


def _write_gathered(folder: Path, key: str, files: dict[str, bytes]) -> None:
    """Write one node's files into ``folder``, each atomically, the CSV last (so a CSV there
    means its companions are there too)."""
    for rel in sorted(files, key=lambda r: r.endswith(".csv") and "/" not in r):
        atomic_write_bytes(folder / rel, files[rel])


# ------------------------------------------------------------------------------- remote side


def _maybe_crash(run: rp.PlannedRun, fault: tuple[str, str]) -> None:
    """The fault-injection test hook (see :data:`FAULT_ENV`)."""
    spec, counter = fault
    for item in filter(None, spec.split(",")):
        which, _, times = item.rpartition(":")
        if which != f"{run.experiment}/{run.model}/{run.seed}":
            continue
        folder = Path(counter or tempfile.gettempdir())
        folder.mkdir(parents=True, exist_ok=True)
        stem = which.replace("/", "-")
        attempt = len(list(folder.glob(f"{stem}.attempt*")))
        (folder / f"{stem}.attempt{attempt}").touch()
        if attempt < int(times):
            os._exit(1)


def _train_one(run: rp.PlannedRun, data: Dataset, device: str, threads: int, commit: str,
               fault: tuple[str, str]) -> tuple[dict, dict[str, bytes]]:
    """Ray task: train one run with ``threads`` torch threads (its CPUs; workers are reused, so
    set on every task) into a temporary artifacts folder; returns its row and the bytes of the
    files it wrote there, keyed by their path relative to the artifacts root."""
    _maybe_crash(run, fault)
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="mnistbench-ray-") as tmp:
        root = Path(tmp)
        row = rp.execute(run, data, device, root, None, commit)
        files = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    return row, files


def _bench_on_node(config: dict, key: str, cwd: str, env: dict[str, str],
                   models: dict[str, bytes] | None = None) -> tuple[int, str, str, dict]:
    """Ray task: the run ``config`` (``RunRequest.to_dict``) into ``<tmp>/<key>.csv`` in a fresh process
    on this node; returns (exit code, host name, the error's line, {file name: bytes} of everything
    named ``<key>.*`` that it wrote, files inside a ``<key>.*`` folder included). ``models``
    (:func:`onnx_bundle`) are written under ``<tmp>/onnx/`` first and the run's ``onnx`` paths
    pointed at them. The run's rows name this node (:data:`NODE_ENV`)."""
    import ray

    with tempfile.TemporaryDirectory(prefix="mnistbench-ray-run-") as tmp:
        out = Path(tmp) / f"{key}.csv"
        if models:
            config = {**config, "onnx": write_bundle(models, Path(tmp) / "onnx", config.get("onnx") or [])}
        req = RunRequest.from_dict({**config, "out_path": str(out)})
        child_env: dict[str, str | None] = dict(env)
        child_env[NODE_ENV] = f"ray:{ray.get_runtime_context().get_node_id()[:12]}@{ray.util.get_node_ip_address()}"
        if "OMP_NUM_THREADS" not in env:  # Ray sets it to the task's CPUs; the benchmark picks its own
            child_env["OMP_NUM_THREADS"] = None
        res = run_in_fresh_process(req, env=child_env, cwd=cwd if Path(cwd).is_dir() else tmp, quiet=True)
        files = {}
        for p in sorted(Path(tmp).rglob("*")):
            rel = p.relative_to(tmp)
            if p.is_file() and rel.parts[0].startswith(f"{key}.") and not rel.name.endswith(".lock"):  # not the writer lock
                files[rel.as_posix()] = p.read_bytes()
    return res.exit_code, socket.gethostname(), res.error, files


def run_everywhere(req: RunRequest, nodes: str, address: str | None, note: Callable[[str], None],
                   show: Callable[[str], None]) -> None:
    """``run --executor ray``: the run ``req`` on each selected node, one at a time each, the files
    gathered into ``req.results_dir/<run-id>/``; ``note`` gets progress lines, ``show`` the summary.

    Raises:
        UsageError: ``req.out_path`` or ``req.resume`` given (they name one host's file), no node matches
        ``nodes``; MnistBenchError: a node's run failed.
    """
    if req.out_path is not None or req.resume:
        raise UsageError("--executor ray writes <results-dir>/<run-id>/<host>.csv; --out and --resume are for one host")
    config = node_request(req).to_dict()
    models = onnx_bundle(req.onnx)
    with RayCluster(address) as cluster:
        chosen = cluster.select_nodes(nodes)
        note(f"benchmarking on {len(chosen)} node(s), one at a time each: "
             + ", ".join(n["NodeManagerHostname"] for n in chosen))
        folder, results = cluster.run_on_nodes(
            chosen, config, req.results_dir, on_done=lambda r: note(f"  {r.key}: exit {r.returncode}"), models=models)
    manifest(folder, config, results)
    show(describe(results, folder))
    show(f"merged report: mnistbench report {folder}")
    check_failures(results)
