"""The host's noise profile: how far two separate runs of the same file drift apart on this machine.

``mnistbench doctor --calibrate`` measures it: the standard deviation of ln(ratio) over its A/A
trials of separate runs (two ``mnistbench run`` processes of identical files, one after the other),
a figure that holds every source of between-run movement this host showed while it was measured
(its clock, its neighbours, the sessions' own offsets). It is stored in the user cache
(:func:`cache_path`), keyed by the host (:func:`host_key`), recorded in each run's system JSON
(``noise_profile``), and `compare --noise auto` (the default) uses it as the between-run spread of
a ratio (:mod:`bench.compare`). Without one, compare uses :data:`DEFAULT_SIGMA` and says so.

File (JSON, written atomically): ``{"schema": 1, "profiles": {HOST_KEY: PROFILE}}`` where PROFILE is
``{"sigma_log": float, "trials": int, "measured_utc": str, "condition": str, "command": str,
"host": str, "cpu_model": str}``; a file that is not of this shape is ignored with a warning, never
trusted.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import socket
import time
from pathlib import Path

from ...models.files import atomic_write_bytes

SCHEMA = 1
# The between-run spread (standard deviation of ln ratio) assumed on a host with no profile. The
# reference network's own movement between the two runs widens every interval further when it is
# larger, and in a pilot on this project's 2-vCPU VM (lenet5 batch 32, unpinned, 20 runs as-is and
# under the bursty neighbour, every ordered pair: 212 A/A comparisons) that widening alone left no
# A/A pair `slower` or `faster`, where the within-run intervals called 72 of them so. 3% keeps a
# margin for a model that moves without the reference; results/calibration/v2/ measures the
# verdicts with it. A host whose runs spread more or less than that measures its own profile.
DEFAULT_SIGMA = 0.03
MIN_TRIALS = 5  # fewer A/A trials give no profile: a standard deviation of 4 values is itself +-35%



def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_path() -> Path:
    """``$MNISTBENCH_CACHE/noise-profile.json``, else ``$XDG_CACHE_HOME/mnistbench/...``, else
    ``~/.cache/mnistbench/noise-profile.json``."""
    root = os.environ.get("MNISTBENCH_CACHE")
    if root:
        return Path(root) / "noise-profile.json"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "mnistbench" / "noise-profile.json"


def host_key(system: dict | None = None) -> str:
    """``hostname|cpu model|machine id`` of this host (or of a system JSON's ``host``, ``cpu_model``
    and ``machine_id``): two VMs of one image share a hostname but not a machine id."""
    if system is not None:
        return f"{system.get('host', '')}|{system.get('cpu_model', '')}|{system.get('machine_id', '')}"
    return f"{socket.gethostname()}|{cpu_model()}|{machine_id()}"


def machine_id() -> str:
    """``/etc/machine-id`` (systemd's stable host id), or empty where there is none."""
    try:
        return Path("/etc/machine-id").read_text().strip()[:64]
    except OSError:
        return ""


NODE_ENV = "MNISTBENCH_NODE"  # set by the Ray executor for the run it starts on a node (bench.launch.ray_executor)
_RAY_NODE = re.compile(r"ray:[0-9a-f]{8,64}@[0-9A-Za-z.:_-]{1,64}")


def node_id() -> str:
    """Which node measures: ``ray:<node id, 12 hex>@<node IP>`` inside a Ray task (:data:`NODE_ENV`,
    set by the executor: two Ray nodes on one machine share its machine id), else
    ``machine:<machine id, 12 hex>``, else empty (no machine id: the host name is then all there is).
    A malformed :data:`NODE_ENV` is ignored."""
    env = os.environ.get(NODE_ENV, "")
    if _RAY_NODE.fullmatch(env):
        return env
    mid = machine_id()
    return f"machine:{mid[:12]}" if mid else ""


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or not isinstance(data.get("profiles"), dict):
        return {}
    return data["profiles"]


def valid(profile: object) -> bool:
    """Whether ``profile`` is a usable profile: a dict with a finite ``sigma_log`` in [0, 1] from at
    least :data:`MIN_TRIALS` trials."""
    if not isinstance(profile, dict):
        return False
    s, n = profile.get("sigma_log"), profile.get("trials")
    return (isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) and 0 <= s <= 1
            and isinstance(n, int) and not isinstance(n, bool) and n >= MIN_TRIALS)


def load(key: str | None = None, path: Path | None = None) -> dict | None:
    """The stored profile of host ``key`` (default: this host), or None."""
    p = _read(path or cache_path()).get(key or host_key())
    return p if valid(p) else None


def save(sigma_log: float, trials: int, condition: str, command: str, path: Path | None = None) -> dict:
    """Store this host's profile (replacing its earlier one, keeping other hosts'); returns it.

    Raises:
        ValueError: ``sigma_log`` not finite in [0, 1] or fewer than :data:`MIN_TRIALS` trials.
    """
    profile = {"sigma_log": float(sigma_log), "trials": int(trials), "condition": condition, "command": command,
               "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": socket.gethostname(),
               "cpu_model": cpu_model()}
    if not valid(profile):
        raise ValueError(f"not a usable noise profile: sigma {sigma_log}, {trials} trials")
    path = path or cache_path()
    profiles = _read(path)
    profiles[host_key()] = profile
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps({"schema": SCHEMA, "profiles": profiles}, indent=2).encode())
    return profile


def sigma_of(systems: list[dict]) -> tuple[float, str]:
    """The between-run spread to judge two result sets by, from their system JSONs: the largest
    ``noise_profile.sigma_log`` recorded in any of them; else this host's stored profile when every
    set ran on this host; else :data:`DEFAULT_SIGMA`. Returns (sigma, where it came from)."""
    recorded = [s["noise_profile"]["sigma_log"] for s in systems
                if isinstance(s, dict) and valid(s.get("noise_profile"))]
    if recorded:
        return max(recorded), "the runs' noise profile"
    here = host_key()
    if systems and all(isinstance(s, dict) and host_key(s) == here for s in systems):
        p = load(here)
        if p:
            return p["sigma_log"], "this host's noise profile"
    return DEFAULT_SIGMA, "no noise profile"
