"""The raw zone's object stores: one suite, run on the file store and on S3 (a moto server)."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import itertools
import os
import tracemalloc
import uuid
import zlib
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amzlake.errors import ConfigError, DocumentCorrupt
from amzlake.storage.file_store import INCOMING, FileStore
from amzlake.storage.objects import (
    GzipVerifier,
    ObjectExists,
    ObjectMissing,
    ObjectStore,
    open_store,
)

MIB = 1024 * 1024
PART = 5 * MIB  # the S3 store's part size in these tests: S3's minimum, so multipart starts early


async def stream(chunks: Iterable[bytes], *, pause: bool = False) -> AsyncIterator[bytes]:
    """`chunks` as an async stream (yielding to the loop between chunks when `pause`)."""
    for chunk in chunks:
        if pause:
            await asyncio.sleep(0)
        yield chunk


async def failing(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    """`chunks`, then a dropped connection."""
    for chunk in chunks:
        yield chunk
    raise ConnectionResetError("peer dropped the download")


def put(store: ObjectStore, key: str, chunks: Iterable[bytes], **kwargs):  # type: ignore[no-untyped-def]
    """Store `chunks` under `key` (synchronously, for tests)."""
    return asyncio.run(store.put_stream(key, stream(chunks), **kwargs))


def read(store: ObjectStore, key: str) -> bytes:
    """The whole object (small objects only)."""
    with store.open_read(key) as f:
        return f.read()


def pieces(data: bytes, size: int) -> list[bytes]:
    """`data` cut into chunks of `size` bytes."""
    return [data[i:i + size] for i in range(0, len(data), size)]


def document(rows: int = 2000) -> bytes:
    """A gzipped JSON report document like Amazon's."""
    body = b"[" + b",".join(b'{"date":"2026-11-18","asin":"B0%08d","units":%d}' % (i, i % 7)
                            for i in range(rows)) + b"]"
    return gzip.compress(body, mtime=0)


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    """An empty store of each kind: a folder, or a fresh bucket on the moto server."""
    if request.param == "file":
        yield open_store(tmp_path / "lake")
        return
    endpoint = request.getfixturevalue("moto_server")
    request.getfixturevalue("aws_env")
    import boto3

    bucket = f"raw-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    yield open_store(f"s3://{bucket}/zone", endpoint_url=endpoint, part_size=PART)


def visible_files(store: ObjectStore) -> list[str]:
    """Every name the backend holds (hidden temp files and pending uploads included)."""
    if hasattr(store, "root"):
        return sorted(p.relative_to(store.root).as_posix()
                      for p in store.root.rglob("*") if p.is_file())
    s3, bucket, prefix = store._s3, store.bucket, store.prefix  # type: ignore[attr-defined]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return sorted([k.removeprefix(prefix) for k in keys]
                  + [f"upload:{u['Key']}" for u in uploads])


KEY = "raw/vendor/GET_VENDOR_SALES_REPORT/2026-11-18/A1V/k1/20261119T000000000000Z.json.gz"


def test_round_trip_keeps_bytes_size_and_checksum(store: ObjectStore) -> None:
    body = document()
    info = put(store, KEY, pieces(body, 1000), expect_size=len(body), verify=GzipVerifier())
    assert (info.key, info.size, info.sha256) == (KEY, len(body), hashlib.sha256(body).hexdigest())
    assert read(store, KEY) == body
    assert store.exists(KEY)
    head = store.head(KEY)
    assert head is not None
    assert (head.size, head.sha256) == (len(body), info.sha256)
    assert store.head(KEY + ".other") is None
    assert not store.exists(KEY + ".other")


def test_an_existing_key_is_never_overwritten(store: ObjectStore) -> None:
    put(store, KEY, [b"first"])
    with pytest.raises(ObjectExists, match="already exists"):
        put(store, KEY, [b"second"])
    assert read(store, KEY) == b"first"


@pytest.mark.parametrize("size", [3000, 2 * PART + 123], ids=["small", "multipart"])
def test_the_final_publish_itself_refuses_a_taken_key(store: ObjectStore, size: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer got in after the early existence check: the atomic publish still refuses
    (file store: link(2); S3: the conditional PutObject / CompleteMultipartUpload)."""
    put(store, KEY, [b"first"])
    monkeypatch.setattr(store, "exists", lambda key: False)
    with pytest.raises(ObjectExists, match="already exists"):
        put(store, KEY, pieces(b"2" * size, MIB))
    monkeypatch.undo()
    assert read(store, KEY) == b"first"
    assert visible_files(store) == [KEY]


def test_two_file_writers_racing_for_one_key_store_exactly_one_body(tmp_path: Path) -> None:
    """Both pass the early check and write at once; exactly one body is published, whole.

    File store only: moto checks If-None-Match and then writes without a lock, so two truly
    concurrent requests can both pass there, while S3 itself answers one of them with 412/409.
    """
    store = open_store(tmp_path)
    bodies = [bytes([n]) * (3 * MIB + 5) for n in (1, 2)]

    async def race() -> list[object]:
        return await asyncio.gather(
            *(store.put_stream(KEY, stream(pieces(b, MIB), pause=True)) for b in bodies),
            return_exceptions=True)

    results = asyncio.run(race())
    assert sum(isinstance(r, ObjectExists) for r in results) == 1
    winner = next(i for i, r in enumerate(results) if not isinstance(r, BaseException))
    assert read(store, KEY) == bodies[winner]
    assert visible_files(store) == [KEY]


@pytest.mark.parametrize("size", [3000, 2 * PART + 123], ids=["small", "multipart"])
def test_a_stream_that_breaks_midway_leaves_nothing_behind(store: ObjectStore, size: int) -> None:
    with pytest.raises(ConnectionResetError):
        asyncio.run(store.put_stream(KEY, failing(pieces(b"x" * size, MIB))))
    assert not store.exists(KEY)
    assert list(store.list()) == []
    assert visible_files(store) == []


def _abandon_a_write(store: ObjectStore, key: str) -> None:
    """What a download killed mid-stream leaves: a temp file, or an unfinished upload."""
    if isinstance(store, FileStore):
        incoming = store.root / INCOMING
        incoming.mkdir(exist_ok=True)
        (incoming / f"{key.rsplit('/', 1)[-1]}.{uuid.uuid4().hex}.tmp").write_bytes(b"\x1f\x8b cut")
    else:
        s3 = store._s3  # type: ignore[attr-defined]
        s3.create_multipart_upload(Bucket=store.bucket, Key=store.prefix + key)  # type: ignore[attr-defined]


def test_writes_a_killed_download_left_are_swept_once_old(store: ObjectStore) -> None:
    put(store, KEY, [document()])
    _abandon_a_write(store, KEY.replace("k1", "k2"))
    before = visible_files(store)
    assert len(before) == 2
    if isinstance(store, FileStore):
        # Younger than the cut-off: kept (it may be a download still running). moto dates every
        # multipart upload 2010-11-10T20:48:33Z, so on S3 only the folder store can show this.
        assert store.sweep_abandoned(datetime.now(UTC) - timedelta(hours=1)) == 0
        assert visible_files(store) == before
    assert store.sweep_abandoned(datetime.now(UTC) + timedelta(seconds=5)) == 1
    assert visible_files(store) == [KEY]  # the stored object stays
    assert read(store, KEY) == document()


def test_a_corrupt_or_short_body_is_refused_and_not_stored(store: ObjectStore) -> None:
    body = document()
    with pytest.raises(DocumentCorrupt, match="truncated"):
        put(store, KEY, pieces(body[:-9], 500), verify=GzipVerifier())
    with pytest.raises(DocumentCorrupt, match=f"got {len(body) - 1} bytes, {len(body)} announced"):
        put(store, KEY, pieces(body[:-1], 500), expect_size=len(body))
    with pytest.raises(DocumentCorrupt, match="longer than"):
        put(store, KEY, pieces(body + b"x", 500), expect_size=len(body))
    assert visible_files(store) == []
    put(store, KEY, pieces(body, 500), verify=GzipVerifier(), expect_size=len(body))
    assert read(store, KEY) == body


def test_listing_by_prefix(store: ObjectStore) -> None:
    keys = ["raw/ads/spCampaigns/2026-11-18/1/a/1.json.gz",
            "raw/ads/spCampaigns/2026-11-19/1/b/1.json.gz",
            "raw/ads/sbPurchasedProduct/2026-11-18/1/c/1.json.gz",
            "raw/vendor/GET_VENDOR_SALES_REPORT/2026-11-18/V/d/1.json.gz"]
    for n, key in enumerate(reversed(keys)):
        put(store, key, [b"x" * (n + 1)])
    assert [i.key for i in store.list()] == sorted(keys)
    assert [i.key for i in store.list("raw/ads/")] == sorted(keys[:3])
    assert [i.key for i in store.list("raw/ads/sp")] == keys[:2]
    assert [i.key for i in store.list("raw/ads/spCampaigns/2026-11-19/")] == [keys[1]]
    assert list(store.list("raw/seller/")) == []
    assert {i.key: i.size for i in store.list("raw/vendor")} == {keys[3]: 1}
    store.delete(keys[0])
    assert keys[0] not in [i.key for i in store.list()]
    with pytest.raises(ObjectMissing, match="no object"):
        store.open_read(keys[0])


@pytest.mark.parametrize("key", ["", "/abs/key", "raw/../x", "raw//x", "raw/.hidden", "a\\b"])
def test_unsafe_keys_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid object key"):
        put(store, key, [b"x"])


def test_a_big_body_streams_in_bounded_memory(store: ObjectStore) -> None:
    """50 MB in 1 MB chunks: peak traced memory stays a few parts, not the body."""
    total, rng, digest = 50 * MIB, np.random.default_rng(20261118), hashlib.sha256()

    def chunks() -> Iterator[bytes]:
        for _ in range(total // MIB):
            chunk = rng.bytes(MIB)
            digest.update(chunk)
            yield chunk

    tracemalloc.start()
    try:
        info = put(store, KEY, chunks(), expect_size=total)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.size == total and info.sha256 == digest.hexdigest()
    head = store.head(KEY)
    assert head is not None and head.sha256 == digest.hexdigest()
    # file: a few 1 MiB chunks in flight (received, being checked, being written);
    # S3: the part being filled plus two parts on the wire.
    bound = 6 * MIB if hasattr(store, "root") else 6 * PART
    assert peak < bound, f"peak {peak / MIB:.1f} MiB"
    print(f"{type(store).__name__}: 50 MiB stored with a traced peak of {peak / MIB:.1f} MiB")
    read_back = hashlib.sha256()
    with store.open_read(KEY) as f:
        while piece := f.read(MIB):
            read_back.update(piece)
    assert read_back.hexdigest() == digest.hexdigest()


# -- backend specifics --------------------------------------------------------------------------


def test_s3_passes_server_side_encryption_through(moto_server: str, aws_env: None) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_server)
    bucket = f"raw-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    store = open_store(f"s3://{bucket}/", endpoint_url=moto_server, sse="AES256", part_size=PART)
    put(store, "a/small.bin", [b"x" * 10])
    put(store, "a/big.bin", pieces(b"y" * (PART + 10), MIB))
    for key in ("a/small.bin", "a/big.bin"):
        assert s3.head_object(Bucket=bucket, Key=key)["ServerSideEncryption"] == "AES256"
    assert s3.get_object_tagging(Bucket=bucket, Key="a/big.bin")["TagSet"] == [
        {"Key": "sha256", "Value": hashlib.sha256(b"y" * (PART + 10)).hexdigest()}]


def test_file_store_publishes_nothing_but_the_finished_file(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/lake")
    put(store, "a/b.json.gz", [b"1", b"2"])
    assert sorted(os.listdir(tmp_path / "lake" / "a")) == ["b.json.gz"]
    assert os.listdir(tmp_path / "lake" / INCOMING) == []  # the temp file went with its publish


@pytest.mark.parametrize("url", ["gs://bucket/x", "s3://", "s3:///prefix"])
def test_unknown_or_incomplete_store_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError, match="raw zone"):
        open_store(url)


# -- the gzip verifier --------------------------------------------------------------------------


def verify(data: bytes, cuts: Iterable[int] = ()) -> GzipVerifier:
    """Run a GzipVerifier over `data`, fed in pieces split at `cuts`."""
    v = GzipVerifier(max_piece=4096)
    bounds = [0, *sorted(set(c for c in cuts if 0 < c < len(data))), len(data)]
    for a, b in itertools.pairwise(bounds):
        v.update(data[a:b])
    v.finish()
    return v


DOC = document(3000)
PLAIN = gzip.decompress(DOC)


TWO_MEMBERS = DOC + gzip.compress(b"[]", mtime=0) + b"\0" * 4


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, len(TWO_MEMBERS)), max_size=20))
def test_gzip_verifier_accepts_a_whole_stream_however_it_is_chunked(cuts: list[int]) -> None:
    v = verify(DOC, cuts)
    assert v.uncompressed_size == len(PLAIN) and v.members == 1
    v = verify(TWO_MEMBERS, cuts)
    assert v.uncompressed_size == len(PLAIN) + 2 and v.members == 2


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(DOC) - 1), st.lists(st.integers(0, len(DOC)), max_size=5))
def test_gzip_verifier_rejects_any_cut(cut: int, chunks: list[int]) -> None:
    with pytest.raises(DocumentCorrupt):
        verify(DOC[:cut], chunks)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 8), st.integers(1, 255))
def test_gzip_verifier_rejects_a_wrong_crc_or_length(from_end: int, xor: int) -> None:
    bad = bytearray(DOC)
    bad[-from_end] ^= xor
    with pytest.raises(DocumentCorrupt, match=r"(?i)incorrect"):  # zlib and ISA-L word it alike
        verify(bytes(bad))


def test_gzip_verifier_allows_members_and_zero_padding_but_not_garbage() -> None:
    second = gzip.compress(b"[]", mtime=0)
    v = verify(DOC + second + b"\0" * 10, cuts=[len(DOC) + 1, len(DOC) + 5])
    assert v.members == 2 and v.uncompressed_size == len(PLAIN) + 2
    for junk in (b"garbage", b"\0\0PK"):
        with pytest.raises(DocumentCorrupt):
            verify(DOC + junk)
    with pytest.raises(DocumentCorrupt, match="empty"):
        verify(b"")
    with pytest.raises(DocumentCorrupt):
        verify(b"\0" + DOC)  # padding is allowed only after a member
    with pytest.raises(DocumentCorrupt):
        verify(b'[{"not":"gzip"}]')
    middle = bytearray(DOC)
    middle[len(DOC) // 2] ^= 0xFF
    with pytest.raises(DocumentCorrupt):
        verify(bytes(middle))
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
    big = bomb.compress(b"\0" * (64 * MIB)) + bomb.flush()
    assert verify(big).uncompressed_size == 64 * MIB  # inflated in pieces, never held whole
