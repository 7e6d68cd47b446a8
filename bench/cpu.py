"""CPU time processes spent, from /proc: the measure of what the proxy itself costs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Iterable[int]) -> float:
    """User plus system time of `pids` (each a process: all its threads, live and exited)."""
    ticks = 0
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat").read_text()
        # The command name (field 2) may hold spaces and parentheses: count fields after its end.
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)
    return ticks / _TICKS_PER_SECOND


class CpuMeter:
    """CPU seconds spent by a set of processes between `start()` and `stop()`. The set is looked
    up when started, so nginx's workers are the ones serving that run."""

    def __init__(self, pids: Callable[[], Iterable[int]]) -> None:
        self._pids = pids
        self._watched: tuple[int, ...] = ()
        self._started = 0.0

    def start(self) -> None:
        self._watched = tuple(self._pids())
        self._started = cpu_seconds(self._watched)

    def stop(self) -> float:
        return cpu_seconds(self._watched) - self._started


class CoreMeter:
    """How busy some cores were between `start()` and `stop()`, as a fraction of their time: whether
    a run was limited by the server side's CPU, and whether anything else was using it."""

    def __init__(self, cores: Iterable[int]) -> None:
        self._cores = {f"cpu{core}" for core in cores}
        self._started = (0, 0)

    def start(self) -> None:
        self._started = self._busy_and_total()

    def stop(self) -> float:
        busy, total = self._busy_and_total()
        return (busy - self._started[0]) / max(1, total - self._started[1])

    def _busy_and_total(self) -> tuple[int, int]:
        busy = total = 0
        for line in Path("/proc/stat").read_text().splitlines():
            name, *counters = line.split()
            if name in self._cores:
                # user nice system idle iowait irq softirq steal ...; guest time is inside user.
                ticks = [int(counter) for counter in counters[:8]]
                total += sum(ticks) - ticks[7]  # stolen by the hypervisor: not ours to use
                busy += sum(ticks) - ticks[3] - ticks[4] - ticks[7]
        return busy, total
