"""The raw zone in S3 (or any S3 API: moto, MinIO): conditional, multipart, optionally SSE-KMS.

Nothing becomes visible under a key until the final PutObject or CompleteMultipartUpload, and
both carry `If-None-Match: *`, so S3 itself refuses to overwrite a raw object (S3 conditional
writes, "Add preconditions to S3 operations with conditional requests", AWS S3 user guide).
A body is buffered one part at a time, so memory stays near `part_size * (max_in_flight + 1)`.
Only this module imports boto3; `open_store` loads it when an s3:// URL is chosen.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

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

MIN_PART = 5 * 1024 * 1024  # S3's smallest allowed part (all but the last)
_EXISTS_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class _BodyReader(io.RawIOBase):
    """A raw binary stream over a botocore StreamingBody, so io.BufferedReader can wrap it."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class S3Store:
    """Raw objects in one bucket under a key prefix."""

    def __init__(self, bucket: str, prefix: str = "", *, client: Any = None,
                 endpoint_url: str | None = None, region_name: str | None = None,
                 sse: str | None = None, sse_kms_key_id: str | None = None,
                 part_size: int = 8 * 1024 * 1024, max_in_flight: int = 2) -> None:
        if part_size < MIN_PART:
            raise ValueError(f"part_size must be at least {MIN_PART} bytes (S3's minimum part)")
        if sse_kms_key_id and sse is None:
            sse = "aws:kms"
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.location = f"s3://{bucket}/{self.prefix}"
        self.part_size = part_size
        self.max_in_flight = max(1, max_in_flight)
        # Passed through to every write: the AWS runtime encrypts raw with its KMS key.
        self._sse: dict[str, str] = {}
        if sse:
            self._sse["ServerSideEncryption"] = sse
        if sse_kms_key_id:
            self._sse["SSEKMSKeyId"] = sse_kms_key_id
        self._s3 = client or boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region_name,
            config=Config(retries={"mode": "standard", "max_attempts": 5},
                          max_pool_connections=max(10, 2 * self.max_in_flight)))

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _error(self, doing: str, key: str, exc: Exception) -> StorageError:
        return StorageError(f"raw zone {self.location}: {doing} {key} failed: {exc}")

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], *,
                         expect_size: int | None = None,
                         verify: ChunkVerifier | None = None) -> ObjectInfo:
        """The stored object; written atomically and only if the stream passed every check."""
        full = self._key(key)
        if await asyncio.to_thread(self.exists, key):  # cheap early refusal; S3 checks again
            raise ObjectExists(f"raw object {self.location}{key} already exists")
        check = StreamCheck(key, expect_size, verify)
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[asyncio.Task[dict[str, Any]]] = []
        try:
            # aclosing: an error here stops the verifier at once, not when the generator is collected.
            async with contextlib.aclosing(checked(chunks, check)) as stream:
                async for chunk in stream:
                    buffer += chunk
                    while len(buffer) >= self.part_size:
                        if upload_id is None:
                            upload_id = await asyncio.to_thread(self._start_multipart, full)
                        body = bytes(buffer[: self.part_size])
                        del buffer[: self.part_size]
                        number = len(parts) + 1
                        parts.append(asyncio.create_task(
                            asyncio.to_thread(self._upload_part, full, upload_id, number, body)))
                        # Bound memory: at most `max_in_flight` parts on the wire at once.
                        in_flight = [t for t in parts if not t.done()]
                        if len(in_flight) >= self.max_in_flight:
                            await in_flight[0]
            sha256 = check.finish()
            if upload_id is None:
                await asyncio.to_thread(self._put_small, full, bytes(buffer), sha256)
            else:
                if buffer:
                    parts.append(asyncio.create_task(asyncio.to_thread(
                        self._upload_part, full, upload_id, len(parts) + 1, bytes(buffer))))
                done = list(await asyncio.gather(*parts))
                await asyncio.to_thread(self._complete, full, upload_id, done, sha256)
                upload_id = None
        except BaseException:
            if parts:
                await asyncio.gather(*parts, return_exceptions=True)
            if upload_id is not None:
                await asyncio.to_thread(self._abort, full, upload_id)
            raise
        return ObjectInfo(key, check.size, sha256, None)

    # -- blocking S3 calls (run in a thread) ----------------------------------------------

    def _start_multipart(self, full: str) -> str:
        try:
            return self._s3.create_multipart_upload(Bucket=self.bucket, Key=full,
                                                    **self._sse)["UploadId"]
        except (ClientError, BotoCoreError) as exc:
            raise self._error("starting upload of", full, exc) from exc

    def _upload_part(self, full: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        try:
            r = self._s3.upload_part(Bucket=self.bucket, Key=full, UploadId=upload_id,
                                     PartNumber=number, Body=body)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(f"uploading part {number} of", full, exc) from exc
        return {"PartNumber": number, "ETag": r["ETag"]}

    def _put_small(self, full: str, body: bytes, sha256: str) -> None:
        try:
            self._s3.put_object(Bucket=self.bucket, Key=full, Body=body, IfNoneMatch="*",
                                Metadata={"sha256": sha256}, **self._sse)
        except ClientError as exc:
            if _code(exc) in _EXISTS_CODES:
                raise ObjectExists(f"raw object s3://{self.bucket}/{full} already exists") from None
            raise self._error("writing", full, exc) from exc
        except BotoCoreError as exc:
            raise self._error("writing", full, exc) from exc

    def _complete(self, full: str, upload_id: str, parts: list[dict[str, Any]],
                  sha256: str) -> None:
        try:
            self._s3.complete_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id,
                                               MultipartUpload={"Parts": parts}, IfNoneMatch="*")
        except ClientError as exc:
            if _code(exc) in _EXISTS_CODES:
                raise ObjectExists(f"raw object s3://{self.bucket}/{full} already exists") from None
            raise self._error("completing upload of", full, exc) from exc
        except BotoCoreError as exc:
            raise self._error("completing upload of", full, exc) from exc
        # A multipart object's metadata is fixed before its checksum is known: tag it instead.
        try:
            self._s3.put_object_tagging(Bucket=self.bucket, Key=full,
                                        Tagging={"TagSet": [{"Key": "sha256", "Value": sha256}]})
        except (ClientError, BotoCoreError) as exc:
            raise self._error("tagging", full, exc) from exc

    def _abort(self, full: str, upload_id: str) -> None:
        # A lifecycle rule on incomplete uploads cleans up whatever this cannot.
        with contextlib.suppress(ClientError, BotoCoreError):
            self._s3.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)

    # -- the rest of the interface ---------------------------------------------------------

    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""
        return self._head(self._key(key)) is not None

    def _head(self, full: str) -> dict[str, Any] | None:
        try:
            return self._s3.head_object(Bucket=self.bucket, Key=full)
        except ClientError as exc:
            if _code(exc) in _MISSING_CODES:
                return None
            raise self._error("reading", full, exc) from exc
        except BotoCoreError as exc:
            raise self._error("reading", full, exc) from exc

    def head(self, key: str) -> ObjectInfo | None:
        """The object's size, SHA-256 (metadata, or the tag of a multipart object) and time."""
        full = self._key(key)
        meta = self._head(full)
        if meta is None:
            return None
        sha256 = meta.get("Metadata", {}).get("sha256")
        if sha256 is None:
            try:
                tags = self._s3.get_object_tagging(Bucket=self.bucket, Key=full)["TagSet"]
            except (ClientError, BotoCoreError) as exc:
                raise self._error("reading tags of", full, exc) from exc
            sha256 = next((t["Value"] for t in tags if t["Key"] == "sha256"), None)
        return ObjectInfo(key, int(meta["ContentLength"]), sha256, meta.get("LastModified"))

    def open_read(self, key: str) -> BinaryIO:
        """A buffered binary stream of the object's bytes, fetched as it is read."""
        full = self._key(key)
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=full)["Body"]
        except ClientError as exc:
            if _code(exc) in _MISSING_CODES:
                raise ObjectMissing(f"raw zone {self.location}: no object {key}") from None
            raise self._error("reading", full, exc) from exc
        except BotoCoreError as exc:
            raise self._error("reading", full, exc) from exc
        return io.BufferedReader(_BodyReader(body), buffer_size=1 << 20)  # type: ignore[return-value]

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with `prefix`, sorted by key (S3 lists in key order)."""
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix)
        try:
            for page in pages:
                for obj in page.get("Contents", []):
                    yield ObjectInfo(obj["Key"][len(self.prefix):], int(obj["Size"]), None,
                                     obj.get("LastModified"))
        except (ClientError, BotoCoreError) as exc:
            raise self._error("listing", prefix, exc) from exc

    def delete(self, key: str) -> None:
        """Remove the object if present (for quarantine moves only)."""
        full = self._key(key)
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=full)
        except (ClientError, BotoCoreError) as exc:
            raise self._error("deleting", full, exc) from exc

    def sweep_abandoned(self, older_than: datetime) -> int:
        """Abort multipart uploads under the prefix started before `older_than` (a download
        killed mid-stream); returns how many. The AWS stack's lifecycle rule does this too."""
        aborted = 0
        pages = self._s3.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix)
        try:
            for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] < older_than:
                        self._s3.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                        UploadId=upload["UploadId"])
                        aborted += 1
        except (ClientError, BotoCoreError) as exc:
            raise self._error("sweeping unfinished uploads under", self.prefix, exc) from exc
        return aborted

    def __repr__(self) -> str:
        return f"S3Store({self.location!r})"
