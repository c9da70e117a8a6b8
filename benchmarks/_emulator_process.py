"""Run `amzlake emulator` as a child process for benchmarks, and read its memory from /proc."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
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
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def cpu_count() -> int:
    """Cores this process may use."""
    return len(os.sched_getaffinity(0))
