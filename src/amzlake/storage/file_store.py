"""The raw zone in a local folder: write to a temp file in its hidden `.incoming/` folder, fsync,
then link.

`os.link` publishes the finished file under its key atomically and fails if the key exists, so a
concurrent writer can never overwrite a raw object; the temp files live in one hidden folder of the
same filesystem, so list() never shows half-written bodies, and what a killed write left is found
without walking the raw zone.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from amzlake.errors import StorageError
from amzlake.storage.objects import (
    ChunkVerifier,
    ObjectExists,
    ObjectInfo,
    ObjectMissing,
    StreamCheck,
    check_key,
    checked,
)

INCOMING = ".incoming"  # the temp files of writes under way, at the raw zone's root

# Filesystems without hard links (some network and FUSE mounts) answer with one of these.
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


def _fsync_dir(path: Path) -> None:
    """Make a new directory entry durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _publish(tmp: Path, final: Path) -> None:
    """Give the finished temp file its key without ever replacing an existing object."""
    taken = f"raw object {final} already exists; raw is never overwritten"
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise ObjectExists(taken) from None
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        # No hard links here: check, then rename (a narrow race, only on such filesystems).
        if final.exists():
            raise ObjectExists(taken) from exc
        os.rename(tmp, final)
    _fsync_dir(final.parent)


class FileStore:
    """Raw objects as files under one root folder; keys are relative paths."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()
        self.location = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], *,
                         expect_size: int | None = None,
                         verify: ChunkVerifier | None = None) -> ObjectInfo:
        """The stored object; written atomically and only if the stream passed every check."""
        final = self._path(key)
        if self.exists(key):
            raise ObjectExists(f"raw object {final} already exists; raw is never overwritten")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"raw zone {self.root}: cannot create {final.parent}: {exc}") \
                from exc
        incoming = self.root / INCOMING
        try:
            incoming.mkdir(exist_ok=True)
        except OSError as exc:
            raise StorageError(f"raw zone {self.root}: cannot create {incoming}: {exc}") from exc
        tmp = incoming / f"{final.name}.{uuid.uuid4().hex}.tmp"
        check = StreamCheck(key, expect_size, verify)
        try:
            with self._create(tmp, key) as out:
                # Errors of the source stream propagate untouched: the caller classifies them.
                # Plain blocking writes: page-cache writes are fast and keep the copy at disk speed;
                # only the fsync, which can take long, leaves the event loop.
                # aclosing: an error here stops the verifier at once, not when the generator is collected.
                async with aclosing(checked(chunks, check)) as stream:
                    async for chunk in stream:
                        with self._io_errors(key):
                            out.write(chunk)
                sha256 = check.finish()
                with self._io_errors(key):
                    out.flush()
                    await asyncio.to_thread(os.fsync, out.fileno())
            with self._io_errors(key):
                await asyncio.to_thread(_publish, tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        return ObjectInfo(key, check.size, sha256, _mtime(final))

    def _create(self, tmp: Path, key: str) -> BinaryIO:
        """A new, exclusive temp file for `key`'s body."""
        with self._io_errors(key):
            return open(tmp, "xb")

    @contextmanager
    def _io_errors(self, key: str) -> Iterator[None]:
        """Turn file system errors into StorageError naming the folder and key."""
        try:
            yield
        except OSError as exc:
            raise StorageError(f"raw zone {self.root}: cannot write {key}: {exc}") from exc

    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""
        return self._path(key).is_file()

    def head(self, key: str) -> ObjectInfo | None:
        """The object's size, SHA-256 (read from the file: heads are rare) and time."""
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                digest = hashlib.file_digest(f, "sha256").hexdigest()
        except FileNotFoundError:
            return None
        return ObjectInfo(key, size, digest, _mtime(path))

    def open_read(self, key: str) -> BinaryIO:
        """A buffered binary stream of the object's bytes."""
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError:
            raise ObjectMissing(f"raw zone {self.root}: no object {key}") from None

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with `prefix`, sorted by key (temp files never appear)."""
        # Walk only the deepest folder the prefix names in full.
        folder, _, _ = prefix.rpartition("/")
        if folder:
            check_key(folder)
        start = self.root.joinpath(*folder.split("/")) if folder else self.root
        found: list[ObjectInfo] = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            base = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith("."):
                    continue
                key = name if base == "." else f"{base}/{name}"
                if key.startswith(prefix):
                    st = os.stat(os.path.join(dirpath, name))
                    found.append(ObjectInfo(key, st.st_size, None,
                                            datetime.fromtimestamp(st.st_mtime, UTC)))
        found.sort(key=lambda info: info.key)
        return iter(found)

    def delete(self, key: str) -> None:
        """Remove the object if present (for quarantine moves only)."""
        self._path(key).unlink(missing_ok=True)

    def sweep_abandoned(self, older_than: datetime) -> int:
        """Remove the temp files of writes killed before their publish (in `.incoming/`), last
        changed before `older_than`; returns how many."""
        removed = 0
        try:
            paths = list((self.root / INCOMING).iterdir())
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise StorageError(f"raw zone {self.root}: cannot list {INCOMING}: {exc}") from exc
        for path in paths:
            try:
                if _mtime(path) < older_than:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue  # its writer finished or removed it meanwhile
            except OSError as exc:
                raise StorageError(f"raw zone {self.root}: cannot remove {path}: {exc}") from exc
        return removed

    def __repr__(self) -> str:
        return f"FileStore({self.location!r})"


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)
