"""Resident memory of this process, for the ``peak_rss_mib`` and ``session_rss_mib`` columns.

On Linux the kernel keeps the process's peak resident set (``VmHWM`` in ``/proc/self/status``) and
resets it when ``5`` is written to ``/proc/self/clear_refs`` (Documentation/filesystems/proc.rst,
"clear_refs"): a window opened before a block and read after it gives the exact peak over the block,
with no polling thread beside the timed calls. Elsewhere (or where the reset is refused) the window
reads the current RSS (``psutil``) at its start and end, which misses a peak inside the block.
optimum-benchmark instead polls RSS every 10 ms from a thread; a thread waking beside the timed calls
on a 2-core machine is exactly the noise this tool avoids.
"""

from __future__ import annotations

import re

import psutil

MIB = 2**20
_HWM = re.compile(r"^VmHWM:\s+(\d+)\s+kB", re.M)


def rss_bytes() -> int:
    """This process's resident set size now, bytes."""
    return psutil.Process().memory_info().rss


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _hwm_bytes() -> int | None:
    try:
        with open("/proc/self/status") as fh:
            m = _HWM.search(fh.read())
    except OSError:
        return None
    return int(m.group(1)) * 1024 if m else None


class PeakWindow:
    """The peak resident set between :meth:`__init__` (the window opens) and :meth:`peak_mib`.

    ``exact`` is True where the kernel's high-water mark could be reset (Linux); otherwise the peak
    is the larger of the RSS at the window's start and at its end.
    """

    def __init__(self) -> None:
        self.exact = _reset_peak()
        self.start = None if self.exact else rss_bytes()  # after a reset the mark starts at the RSS of now

    def peak_mib(self) -> float:
        """The window's peak resident set, MiB (2**20 bytes)."""
        hwm = _hwm_bytes() if self.exact else None
        if hwm is not None:
            return hwm / MIB
        return max(self.start or 0, rss_bytes()) / MIB
