"""The raw zone's object store interface, its factory by URL, and stream verifiers.

Raw is append-only and exact (DESIGN invariant 2): `put_stream` writes a key once, atomically,
after every chunk has passed the caller's verifier, and never overwrites. A plain path or file://
gives the file store; s3://bucket/prefix the S3 store (whose module alone imports boto3).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from isal import igzip_lib

from amzlake.errors import ConfigError, DocumentCorrupt, StorageError


class ObjectExists(StorageError):
    """A raw object is already stored under that key (raw is append-only: never overwritten)."""


class ObjectMissing(StorageError):
    """No object is stored under that key."""


@dataclass(frozen=True)
class ObjectInfo:
    """A stored object: key (relative to the store), size in bytes, SHA-256 (hex) when known."""

    key: str
    size: int
    sha256: str | None = None
    last_modified: datetime | None = None


class ChunkVerifier(Protocol):
    """Sees every chunk of a body, in order, before the body is published; raises to refuse it."""

    def update(self, chunk: bytes) -> None:
        """Check one more chunk (raise DocumentCorrupt as soon as the stream is known bad)."""
        ...

    def finish(self) -> None:
        """Check that the stream ended well (raise DocumentCorrupt otherwise)."""
        ...


class GzipVerifier:
    """Checks a gzip stream chunk by chunk without keeping its output: CRC, length, clean end.

    Several members in a row are allowed (RFC 1952, 2.2), and so is zero padding after a member,
    which Python's own gzip reader tolerates (gzip._GzipReader._read_eof); anything else after a
    member must be another member. Output is inflated in bounded pieces and only counted.
    """

    def __init__(self, max_piece: int = 1 << 20) -> None:
        self._max_piece = max_piece
        self._member: igzip_lib.IgzipDecompressor | None = None  # the member being read, if any
        self.members = 0
        self.compressed_size = 0
        self.uncompressed_size = 0

    def _fail(self, why: str) -> DocumentCorrupt:
        return DocumentCorrupt(f"gzip stream corrupt near byte {self.compressed_size}: {why}")

    def update(self, chunk: bytes) -> None:
        """Inflate `chunk` (counting, not keeping, the output); raises DocumentCorrupt if bad."""
        self.compressed_size += len(chunk)
        data = bytes(chunk)
        while data:
            if self._member is None:
                if self.members:
                    data = data.lstrip(b"\0")
                    if not data:
                        return
                # ISA-L's inflate (the same header, CRC-32 and ISIZE checks as zlib's, about six
                # times faster on report JSON). Its decompressor keeps unconsumed input itself,
                # where zlib's hands it back as a tail to copy on every call.
                self._member = igzip_lib.IgzipDecompressor(flag=igzip_lib.DECOMP_GZIP)
            member = self._member
            try:
                self.uncompressed_size += len(member.decompress(data, self._max_piece))
                while not member.needs_input and not member.eof:
                    self.uncompressed_size += len(member.decompress(b"", self._max_piece))
            except igzip_lib.IsalError as exc:
                raise self._fail(str(exc)) from exc
            if member.eof:
                self.members += 1
                data = member.unused_data
                self._member = None
            else:
                data = b""

    def finish(self) -> None:
        """Raises DocumentCorrupt unless the stream ended exactly after a complete member."""
        if self._member is not None:
            raise self._fail("truncated: the stream ends inside a gzip member")
        if self.members == 0:
            raise self._fail("empty: no gzip member at all")


class StreamCheck:
    """Tallies a body as it streams: size and SHA-256 as chunks arrive, the caller's verifier in a
    thread of its own (see `checked`); `finish` checks the end."""

    def __init__(self, key: str, expect_size: int | None, verify: ChunkVerifier | None) -> None:
        self.key = key
        self.expect_size = expect_size
        self.verify = verify
        self.size = 0
        self._sha = hashlib.sha256()

    def tally(self, chunk: bytes) -> None:
        """Count and hash one chunk; raises DocumentCorrupt early if the body is already too long."""
        self.size += len(chunk)
        if self.expect_size is not None and self.size > self.expect_size:
            raise DocumentCorrupt(f"{self.key}: body is longer than the {self.expect_size} bytes "
                                  "announced")
        self._sha.update(chunk)

    def finish(self) -> str:
        """The body's SHA-256 (hex), once size and verifier agree it is whole."""
        if self.expect_size is not None and self.size != self.expect_size:
            raise DocumentCorrupt(
                f"{self.key}: got {self.size} bytes, {self.expect_size} announced")
        if self.verify is not None:
            self.verify.finish()
        return self._sha.hexdigest()


# How many bytes may wait for the verifier before the download pauses: memory stays bounded
# when checking is slower than the link (loopback), and never stalls a real one.
VERIFY_BACKLOG = 16 << 20


async def checked(chunks: AsyncIterator[bytes], check: StreamCheck, *,
                  backlog: int = VERIFY_BACKLOG) -> AsyncIterator[bytes]:
    """`chunks`, each passed on as soon as `check` has counted and hashed it, while the verifier
    checks them, in order, on a thread of its own.

    Checking (inflating gzip at about 2.5 GB/s of output) is the slowest step of a download, so
    it overlaps with receiving and writing (ISA-L and hashlib release the GIL). Writers may hence
    see a chunk before it is verified: they write to a temporary place and publish only after
    the iteration has ended, which waits for every chunk's check and raises the verifier's
    DocumentCorrupt, if any, as soon as it is known.
    """
    verify = check.verify
    if verify is None:
        async for chunk in chunks:
            check.tally(chunk)
            yield chunk
        return
    pending: deque[tuple[asyncio.Future[None], int]] = deque()
    waiting = 0
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="amzlake-verify")
    try:
        async for chunk in chunks:
            check.tally(chunk)
            pending.append((asyncio.wrap_future(worker.submit(verify.update, chunk)), len(chunk)))
            waiting += len(chunk)
            # Drop what is done (raising a failure at once), then wait while too much is queued.
            while pending and (pending[0][0].done() or waiting > backlog):
                done, size = pending.popleft()
                await done
                waiting -= size
            yield chunk
        for done, _ in pending:
            await done
        pending.clear()
    finally:
        # After an error no check still matters: cancel the queued ones; a running one ends alone.
        for done, _ in pending:
            if not done.done():
                done.cancel()
            elif not done.cancelled():
                done.exception()  # retrieved, so asyncio does not log it as forgotten
        worker.shutdown(wait=False, cancel_futures=True)


def check_key(key: str) -> str:
    """`key` if it is a safe relative object key ('/'-separated, no empty, '.' or hidden parts)."""
    parts = key.split("/")
    if not key or key.startswith("/") or "\\" in key or "\0" in key:
        raise ValueError(f"invalid object key {key!r}: must be a relative '/'-separated path")
    for part in parts:
        # Hidden names are reserved for temporary files, so list() can skip them safely.
        if not part or part in (".", "..") or part.startswith("."):
            raise ValueError(f"invalid object key {key!r}: empty, '.', '..' or hidden part")
    return key


class ObjectStore(Protocol):
    """The raw zone: write-once objects by key. `put_stream` is async (bodies arrive from async
    HTTP); the rest is synchronous (call it through asyncio.to_thread from async code)."""

    location: str

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], *,
                         expect_size: int | None = None,
                         verify: ChunkVerifier | None = None) -> ObjectInfo:
        """The stored object; written atomically and only if the stream passed every check.

        Raises ObjectExists if `key` is taken, DocumentCorrupt if the size or verifier refuse the
        body; in either case, and on any other error, nothing is visible under `key`.
        """
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""
        ...

    def head(self, key: str) -> ObjectInfo | None:
        """The object's size, SHA-256 and time, or None if there is none."""
        ...

    def open_read(self, key: str) -> BinaryIO:
        """A binary stream of the object's bytes (read it in pieces; close it)."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with `prefix`, sorted by key (sha256 not filled in)."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object (for quarantine moves only; raw is otherwise append-only)."""
        ...

    def sweep_abandoned(self, older_than: datetime) -> int:
        """Remove what downloads killed mid-stream left behind and started before `older_than`
        (hidden temp files; unfinished multipart uploads); returns how many."""
        ...


def open_store(url: str | Path, **options: Any) -> ObjectStore:
    """The object store at `url`: a folder path or file:// URL, or s3://bucket/prefix."""
    text = str(url)
    if text.startswith("s3://"):
        bucket, _, prefix = text.removeprefix("s3://").partition("/")
        if not bucket:
            raise ConfigError(f"raw zone {text!r}: s3:// needs a bucket (s3://BUCKET/PREFIX)")
        from amzlake.storage.s3_store import S3Store  # boto3 only when an S3 store is chosen

        return S3Store(bucket, prefix, **options)
    if "://" in text and not text.startswith("file://"):
        scheme = text.split("://", 1)[0]
        raise ConfigError(f"raw zone {text!r}: unknown scheme {scheme!r}; "
                          "use a folder path, file:///folder or s3://bucket/prefix")
    from amzlake.storage.file_store import FileStore

    return FileStore(Path(text.removeprefix("file://")), **options)
