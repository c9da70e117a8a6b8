"""Curation claims: one transformer per slice, however many run on one lake.

`amzlake run` transforms when its downloads fall quiet, and `amzlake transform --watch` may run
beside it on the same lake: without a claim both would curate the same slices, committing each
twice and sending every notification twice. A transformer takes the slice's ledger lease (the
same compare-and-set lease the ingestion uses) before curating it, keeps it alive while it works,
and drops it when the outcome is recorded; a slice another process holds is left to that one. A
transformer that dies loses its claims within one lease.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from types import TracebackType

from amzlake.storage.ledger import Ledger, LedgerEntry

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=2)


def claim_owner() -> str:
    """A lease owner name for this transformer: host, process, and a unique tail."""
    return f"transform@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Claims:
    """Leases on the slices a transformer curates, renewed on a thread until released."""

    def __init__(self, ledger: Ledger, now: Callable[[], datetime],
                 real_seconds: Callable[[float], float], lease: timedelta = CLAIM_LEASE) -> None:
        self.ledger = ledger
        self.now = now
        self.real_seconds = real_seconds  # virtual seconds to wall seconds (the job's clock)
        self.lease = lease
        self.owner = claim_owner()
        self.held: list[str] = []
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def take(self, entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
        """The entries this transformer now holds (others are being curated elsewhere)."""
        got = []
        for e in entries:
            if self.ledger.acquire(e.slice_key, self.owner, self.now(), self.lease) is not None:
                got.append(e)
                self.held.append(e.slice_key)
        if len(got) < len(entries):
            log.info("%d slice(s) are being curated by another process; left to it",
                     len(entries) - len(got))
        return got

    def __enter__(self) -> Claims:
        self._beat = threading.Thread(target=self._renew, name="curation-claims", daemon=True)
        self._beat.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(self.real_seconds(self.lease.total_seconds() / 3)):
            keys = list(self.held)
            for key in set(keys) - self.ledger.extend_all(keys, self.owner, self.now(), self.lease):
                log.warning("slice %s: curation claim lost", key)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        for key in self.held:
            self.ledger.release(key, self.owner)
        self.held.clear()
