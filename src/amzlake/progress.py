"""Progress of a run: a live rich table on a terminal, plain log lines otherwise."""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table

from amzlake.ingest.states import SliceState
from amzlake.storage.ledger import LedgerEntry

log = logging.getLogger("amzlake.run")

ORDER = ("planned", "requested", "processing", "downloaded", "empty", "cancelled", "failed")
_FINAL = {SliceState.DOWNLOADED, SliceState.EMPTY, SliceState.CANCELLED, SliceState.FAILED}


class RunProgress:
    """Listens to ledger changes and shows slices by state, with call statistics."""

    def __init__(self, total: int = 0, stats: Callable[[], dict[str, int]] | None = None,
                 console: Console | None = None, live: bool | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.live_mode = self.console.is_terminal if live is None else live
        self.states: dict[str, SliceState] = {}
        self.total = total
        self.stats = stats or (lambda: {})
        self._live: Live | None = None

    def start(self, entries: list[LedgerEntry]) -> None:
        """Begin showing the run's `entries`."""
        self.states = {e.slice_key: e.state for e in entries}
        self.total = len(entries)
        if self.live_mode:
            self._live = Live(self._table(), console=self.console, refresh_per_second=4,
                              transient=False)
            self._live.start()
        else:
            log.info("run: %d slices to work", self.total)

    def __call__(self, entry: LedgerEntry) -> None:
        before = self.states.get(entry.slice_key)
        self.states[entry.slice_key] = entry.state
        if self._live is not None:
            self._live.update(self._table())
        elif entry.state != before and entry.state in _FINAL:
            extra = f": {entry.error}" if entry.error else (f" ({entry.note})" if entry.note else "")
            log.info("%s %s %s %s..%s %s%s", entry.state.value, entry.source, entry.report_type,
                     entry.start, entry.end, entry.account_id, extra)

    def counts(self) -> Counter[str]:
        """Slices per state right now."""
        return Counter(s.value for s in self.states.values())

    def _table(self) -> Table:
        counts = self.counts()
        table = Table(title=f"amzlake run: {self.total} slices", expand=False)
        for name in ORDER:
            table.add_column(name, justify="right")
        table.add_row(*(str(counts.get(n, 0)) for n in ORDER))
        stats = self.stats()
        if stats:
            table.caption = ", ".join(f"{k} {v}" for k, v in stats.items())
        return table

    def stop(self) -> None:
        """Stop the live display."""
        if self._live is not None:
            self._live.update(self._table())
            self._live.stop()
            self._live = None

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
