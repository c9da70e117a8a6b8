"""What runs in a document worker process: build a plan's document, spool it, send back the result.

Kept apart from jobs.py so that a worker imports only the generators and the spooler, not the web
framework and the fault models the server needs (about 16 MB less per worker).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from amzlake.emulator.documents import DocumentPlan, SpooledDocument, Truth, spool

# Modules a worker needs, imported once in the fork server so that each worker (forked from it)
# starts in milliseconds instead of importing numpy and the generators again.
PRELOAD = (
    "amzlake.emulator.doc_worker",
    "amzlake.emulator.ads_data",
    "amzlake.emulator.vendor_data",
    "amzlake.emulator.brand_analytics_data",
    "amzlake.emulator.vendor_promo_data",
)


@dataclass(frozen=True)
class BuiltDocument:
    """What a worker process sends back: the spooled file, its truth, the time it took."""

    document: SpooledDocument | None
    truth: Truth | None
    seconds: float


def build_document(plan: Callable[[], DocumentPlan | None], path: Path) -> BuiltDocument:
    """Run `plan` and gzip its document into `path` (in a worker process); the result to return."""
    started = time.perf_counter()
    made = plan()
    if made is None:
        return BuiltDocument(None, None, time.perf_counter() - started)
    document = spool(made, path)
    return BuiltDocument(document, made.truth, time.perf_counter() - started)
