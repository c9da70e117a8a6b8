"""`checked`: a body passes through while its verifier runs on a thread of its own, in order,
with a bounded backlog, failing fast and leaving no check behind."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import threading
from collections.abc import AsyncIterator

import pytest

from amzlake.errors import DocumentCorrupt
from amzlake.storage.objects import GzipVerifier, StreamCheck, checked

MIB = 1 << 20
# 24 MiB of barely compressible bytes, so the gzip stream is about as long as the body.
BODY = os.urandom(24 * MIB)
DOC = gzip.compress(BODY, compresslevel=1, mtime=0)


class Source:
    """An async stream of `data` in 1 MiB chunks that counts what has been taken from it."""

    def __init__(self, data: bytes, error: Exception | None = None) -> None:
        self.data = data
        self.error = error
        self.taken = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self.data), MIB):
            self.taken += 1
            yield self.data[i:i + MIB]
            await asyncio.sleep(0)
        if self.error is not None:
            raise self.error


class Watched(GzipVerifier):
    """A GzipVerifier that notes the threads it runs on and how far it has got."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()
        self.done = 0

    def update(self, chunk: bytes) -> None:
        self.threads.add(threading.current_thread().name)
        super().update(chunk)
        self.done += len(chunk)


async def drain(source: Source, check: StreamCheck, backlog: int,
                seen: list[int] | None = None) -> bytes:
    """Everything `checked` passes on; `seen` gets, per chunk, the bytes not yet verified."""
    out = bytearray()
    async for chunk in checked(source.chunks(), check, backlog=backlog):
        out += chunk
        if seen is not None and isinstance(check.verify, Watched):
            seen.append(len(out) - check.verify.done)
    return bytes(out)


def test_a_good_body_passes_whole_verified_off_the_loop_with_a_bounded_backlog() -> None:
    verifier, seen = Watched(), []
    check = StreamCheck("k", len(DOC), verifier)
    out = asyncio.run(drain(Source(DOC), check, backlog=3 * MIB, seen=seen))
    assert out == DOC
    assert check.finish() == hashlib.sha256(DOC).hexdigest()
    assert verifier.uncompressed_size == len(BODY) and verifier.members == 1
    assert verifier.done == len(DOC)  # every byte checked before the iteration ended
    assert verifier.threads and threading.main_thread().name not in verifier.threads
    # Never more than the backlog plus the chunk just received waits for the verifier.
    assert max(seen) <= 3 * MIB + MIB


def test_a_body_that_is_not_gzip_stops_the_download_early() -> None:
    # Say an error page served with 200: refused at its first chunk, the rest never asked for.
    # (A flipped byte inside a deflate stream mostly decodes on and shows at the CRC, the end.)
    source = Source(b"<Error><Code>AccessDenied</Code></Error>" + DOC)
    with pytest.raises(DocumentCorrupt, match="gzip stream corrupt near byte"):
        asyncio.run(drain(source, StreamCheck("k", None, GzipVerifier()), backlog=2 * MIB))
    assert source.taken <= 1 + 2 + 1 < len(DOC) // MIB


def test_a_flipped_byte_is_refused_by_the_crc() -> None:
    bad = bytearray(DOC)
    bad[len(DOC) // 2] ^= 0xFF
    with pytest.raises(DocumentCorrupt, match=r"(?i)incorrect"):
        asyncio.run(drain(Source(bytes(bad)), StreamCheck("k", None, GzipVerifier()),
                          backlog=2 * MIB))


def test_a_source_error_passes_through_and_no_check_is_left_running() -> None:
    before = {t.name for t in threading.enumerate()}
    source = Source(DOC[: 8 * MIB], ConnectionResetError("peer dropped the download"))
    with pytest.raises(ConnectionResetError, match="peer dropped"):
        asyncio.run(drain(source, StreamCheck("k", len(DOC), GzipVerifier()), backlog=4 * MIB))
    for thread in threading.enumerate():
        if thread.name not in before and thread.name.startswith("amzlake-verify"):
            thread.join(timeout=10)
            assert not thread.is_alive()


def test_without_a_verifier_size_and_hash_are_still_checked() -> None:
    check = StreamCheck("k", 10, None)
    with pytest.raises(DocumentCorrupt, match="longer than the 10 bytes"):
        asyncio.run(drain(Source(b"x" * 11), check, backlog=MIB))
    check = StreamCheck("k", 10, None)
    assert asyncio.run(drain(Source(b"x" * 10), check, backlog=MIB)) == b"x" * 10
    assert check.finish() == hashlib.sha256(b"x" * 10).hexdigest()
