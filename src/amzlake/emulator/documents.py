"""Report documents: generated as a stream of JSON text, gzipped into a spool file, served from it.

Generation happens while a report is PROCESSING (as at Amazon), so a download streams a finished
file at disk speed and the server never holds a document in memory. Each document carries its
`Truth`: the row count and metric sums a test can compare a pipeline's output against.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any


@dataclass
class Truth:
    """The ground truth behind one document, filled in while its chunks are generated.

    `sums` maps a column (or `array.column` for multi-array documents) to the exact sum of its
    values: an int for counts, a Decimal for money and rates.
    """

    rows: int = 0
    sums: dict[str, int | Decimal] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, column: str, value: int | Decimal) -> None:
        """Add `value` to the running sum of `column`."""
        self.sums[column] = self.sums.get(column, 0) + value

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view; Decimals become strings so no precision is lost."""
        return {
            "rows": self.rows,
            "sums": {k: (str(v) if isinstance(v, Decimal) else v) for k, v in self.sums.items()},
            "details": self.details,
        }


@dataclass
class DocumentPlan:
    """A document about to be generated: an iterator of UTF-8 JSON pieces and its truth."""

    chunks: Iterator[bytes]
    truth: Truth


@dataclass(frozen=True)
class SpooledDocument:
    """A finished gzip document on disk."""

    path: Path
    size: int  # compressed bytes
    uncompressed_size: int
    sha256: str


def json_array(rows: Iterable[bytes]) -> Iterator[bytes]:
    """Wrap already-serialised JSON values (each a `bytes`) into one JSON array, piece by piece."""
    yield b"["
    first = True
    for row in rows:
        if first:
            first = False
            yield row
        else:
            yield b"," + row
    yield b"]"


# Amazon's gzip level is unknown. Measured on the 1.04M-row spAdvertisedProduct benchmark document
# (712 MB of JSON, one core): level 6 took 6.8 s (105 MB/s) for 51.7 MB, level 2 2.5 s (287 MB/s)
# for 66.7 MB (+29%), level 1 the same time for 73.0 MB, level 3 2.9 s for 62.9 MB. At level 6
# compression was 40% of the whole generation; level 2 is the fastest and the smallest of the fast
# levels, and a pipeline under test only sees a valid gzip either way.
GZIP_LEVEL = 2


def spool(plan: DocumentPlan, path: Path, level: int = GZIP_LEVEL,
          flush_bytes: int = 1 << 20) -> SpooledDocument:
    """Gzip `plan`'s chunks into `path` (written to a temp name, then renamed) in bounded memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    digest = hashlib.sha256()
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: gzip container
    raw = 0
    pending: list[bytes] = []
    pending_len = 0
    with tmp.open("wb") as out:

        def write(data: bytes) -> None:
            if data:
                digest.update(data)
                out.write(data)

        for chunk in plan.chunks:
            raw += len(chunk)
            pending.append(chunk)
            pending_len += len(chunk)
            if pending_len >= flush_bytes:
                write(compressor.compress(b"".join(pending)))
                pending.clear()
                pending_len = 0
        write(compressor.compress(b"".join(pending)))
        write(compressor.flush())
    os.replace(tmp, path)
    return SpooledDocument(path, path.stat().st_size, raw, digest.hexdigest())


def no_rows_document() -> DocumentPlan:
    """An Ads document without rows, `[]` (the emulator's no_rows fault); module-level so a
    worker process can unpickle it."""
    return DocumentPlan(json_array(iter(())), Truth())
