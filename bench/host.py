"""How fast this host runs Python right now, printed in each bench's header.

The shared VMs' speed differs by up to 2x from one machine (and one hour) to the next; a bench's figures are
only comparable across runs together with this number.

    python -m bench.host
"""
from __future__ import annotations

import os
import platform
import time
from datetime import UTC, datetime

LOOP = 2_000_000


def loop_ms(repeat: int = 3) -> float:
    """Best of `repeat` timings, in ms, of one core adding up LOOP integers in a Python loop
    (one core's speed at that moment: steal from other VMs on the host shows in it)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        total = 0
        for i in range(LOOP):
            total += i
        best = min(best, time.perf_counter() - started)
    return best * 1000


def speed_note() -> str:
    """The header fragment: 'python loop 2M adds 123 ms'."""
    return f"python loop {LOOP // 1_000_000}M adds {loop_ms():.0f} ms"


def header() -> str:
    """A bench's first line without its '# ': the machine, the UTC time, the load and the speed."""
    return (f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.1f}, {speed_note()}")


if __name__ == "__main__":
    print(header())
