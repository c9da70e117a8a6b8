"""Run `amzlake emulator` as a child process for benchmarks, and read its memory from /proc."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any


class EmulatorProcess:
    """`python -m amzlake emulator --json ARGS` in a child process; stopped on exit."""

    def __init__(self, *args: str) -> None:
        self.args = ["--json", *args]
        self.proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> EmulatorProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "amzlake", "emulator", *self.args],
            stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the emulator did not start")
        self.info = json.loads(line)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    @property
    def base_url(self) -> str:
        return str(self.info["base_url"])

    @property
    def credentials(self) -> dict[str, Any]:
        return dict(self.info["credentials"])

    def memory_mb(self) -> tuple[float, float]:
        """(current RSS, peak RSS) of the emulator process in MiB, from /proc."""
        assert self.proc is not None
        return process_memory_mb(self.proc.pid)

    def tree_pss_mb(self) -> float:
        """The proportional set size of the emulator and all its descendants, in MiB: memory the
        process tree uses, each shared page counted once across the tree (/proc/*/smaps_rollup)."""
        assert self.proc is not None
        total = 0.0
        for pid in [self.proc.pid, *(p for p, _ in descendants(self.proc.pid))]:
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) / 1024
                        break
            except (FileNotFoundError, ProcessLookupError):
                continue  # exited meanwhile
        return total

    def helpers(self) -> list[Helper]:
        """The emulator's descendant processes (fork server, document workers, ...) right now."""
        assert self.proc is not None
        out = []
        for pid, parent in descendants(self.proc.pid):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                rss, hwm = process_memory_mb(pid)
            except (FileNotFoundError, ProcessLookupError):
                continue  # exited meanwhile
            if "forkserver import main" in cmd:
                # The fork server and the workers forked from it share its command line.
                role = "worker" if parent != self.proc.pid else "forkserver"
            elif "resource_tracker" in cmd:
                role = "resource_tracker"
            elif "spawn_main" in cmd:
                role = "worker"
            else:
                role = "other"
            out.append(Helper(pid, role, rss, hwm))
        return out


@dataclass(frozen=True)
class Helper:
    """One descendant process of the emulator and its memory in MiB."""

    pid: int
    role: str  # worker | forkserver | resource_tracker | other
    rss_mb: float
    peak_mb: float


def process_memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB, from /proc/<pid>/status."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def descendants(pid: int) -> list[tuple[int, int]]:
    """(pid, parent pid) of every descendant of `pid`, from /proc/<pid>/task/*/children."""
    out: list[tuple[int, int]] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except FileNotFoundError:
                continue
            for child in children:
                out.append((child, parent))
                todo.append(child)
    return out


def cpu_count() -> int:
    """Cores this process may use."""
    return len(os.sched_getaffinity(0))


# The 30 columns of the 1,000,000-row spAdvertisedProduct report the benchmarks ask for.
MILLION_ROW_COLUMNS = [
    "date", "campaignId", "campaignName", "adGroupId", "adGroupName", "adId", "advertisedAsin",
    "advertisedSku", "campaignBudgetCurrencyCode", "impressions", "clicks", "cost", "costPerClick",
    "clickThroughRate", "spend", "purchases1d", "purchases7d", "purchases14d", "purchases30d",
    "sales1d", "sales7d", "sales14d", "sales30d", "unitsSoldClicks7d", "unitsSoldClicks14d",
    "attributedSalesSameSku14d", "purchasesSameSku14d", "unitsSoldSameSku14d", "acosClicks14d",
    "roasClicks14d",
]
