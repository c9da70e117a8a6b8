"""Progress of a run: a live rich table on a terminal, plain log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table

from amzlake.ingest.states import SliceState
from amzlake.storage.ledger import LedgerEntry

log = logging.getLogger("amzlake.run")

ORDER = ("planned", "requested", "processing", "downloaded", "empty", "cancelled", "failed")
_FINAL = {SliceState.DOWNLOADED, SliceState.EMPTY, SliceState.CANCELLED, SliceState.FAILED}
# How ClientPool.stats' counters read; the waits are seconds summed over calls.
_STAT_LABELS = {"calls": "calls", "retries": "retries", "throttled": "429s", "server_errors": "5xx",
                "rate_wait": "rate-limit wait", "backoff_wait": "backoff"}


def describe_stats(stats: Mapping[str, float]) -> str:
    """`calls 120, retries 3, 429s 2, 5xx 0, rate-limit wait 95 s, backoff 4 s`."""
    parts = []
    for key, label in _STAT_LABELS.items():
        if key in stats:
            value = stats[key]
            parts.append(f"{label} {value:,.0f} s" if key.endswith("_wait") else f"{label} {value:,.0f}")
    return ", ".join(parts)


class RunProgress:
    """Listens to ledger changes and shows slices by state, with call statistics."""

    def __init__(self, total: int = 0, stats: Callable[[], Mapping[str, float]] | None = None,
                 console: Console | None = None, live: bool | None = None,
                 summary_every: float = 30.0, monotonic: Callable[[], float] = time.monotonic,
                 ) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.live_mode = self.console.is_terminal if live is None else live
        self.states: dict[str, SliceState] = {}
        self.total = total
        self.stats = stats or (lambda: {})
        self.summary_every = summary_every  # plain mode: a line of counts at most this often
        self._monotonic = monotonic
        self._last_summary = monotonic()
        self._live: Live | None = None

    def start(self, entries: list[LedgerEntry]) -> None:
        """Begin showing the run's `entries`."""
        self.states = {e.slice_key: e.state for e in entries}
        self.total = len(entries)
        if self.live_mode:
            # Rendered afresh at every refresh, so waits and 429s show also while no slice moves.
            self._live = Live(console=self.console, refresh_per_second=4, transient=False,
                              get_renderable=self._table)
            self._live.start()
        else:
            log.info("run: %d slices to work", self.total)

    def __call__(self, entry: LedgerEntry) -> None:
        before = self.states.get(entry.slice_key)
        self.states[entry.slice_key] = entry.state
        if self._live is not None:
            return  # redrawn by Live's own refresh
        if entry.state != before and entry.state in _FINAL:
            extra = f": {entry.error}" if entry.error else (f" ({entry.note})" if entry.note else "")
            log.info("%s %s %s %s..%s %s%s", entry.state.value, entry.source, entry.report_type,
                     entry.start, entry.end, entry.account_id, extra)
        if self._monotonic() - self._last_summary >= self.summary_every:
            self._last_summary = self._monotonic()
            log.info("%s", self.summary())

    def summary(self) -> str:
        """Slices by state and the calls' statistics, as one line."""
        counts = self.counts()
        by_state = ", ".join(f"{n} {counts[n]}" for n in ORDER if counts.get(n))
        stats = describe_stats(self.stats())
        return f"run: {self.total} slices: {by_state}" + (f"; {stats}" if stats else "")

    def counts(self) -> Counter[str]:
        """Slices per state right now."""
        # A snapshot: Live renders on its own thread while the run updates the states.
        return Counter(s.value for s in list(self.states.values()))

    def _table(self) -> Table:
        counts = self.counts()
        table = Table(title=f"amzlake run: {self.total} slices", expand=False)
        for name in ORDER:
            table.add_column(name, justify="right")
        table.add_row(*(str(counts.get(n, 0)) for n in ORDER))
        stats = describe_stats(self.stats())
        if stats:
            table.caption = stats
        return table

    def stop(self) -> None:
        """Stop the live display (plain mode: log the final counts)."""
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None
        elif self.total:
            log.info("%s", self.summary())

    def __enter__(self) -> RunProgress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def configure_logging(verbose: bool = False) -> None:
    """Log lines to stderr; httpx's own request lines are kept quiet (they carry signed URLs)."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore", "botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
