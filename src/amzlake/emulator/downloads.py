"""Document downloads: the presigned-URL stand-in, with the download faults acted out.

Amazon serves documents from S3 behind presigned URLs that need no Amazon auth and expire (Ads
about an hour, SP-API five minutes). Errors come back as S3's XML.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Generator
from contextlib import closing
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from amzlake.emulator.faults import Fault, FaultKind
from amzlake.emulator.state import EmulatorState

CHUNK = 1 << 20


class DroppedConnection(Exception):
    """Raised mid-stream to make the server cut the connection (fault drop_download)."""


def _s3_error(status: int, code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return Response(body, status_code=status, media_type="application/xml")


def _pieces(path: Path, plain: bool) -> Generator[bytes]:
    """The spooled gzip document, or its JSON inflated on the way (an uncompressed document)."""
    inflate = zlib.decompressobj(wbits=31) if plain else None
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            yield inflate.decompress(chunk) if inflate else chunk
    if inflate:
        yield inflate.flush()


async def _stream(pieces: Generator[bytes], limit: int, corrupt_at: int | None, drop: bool,
                  bytes_per_second: float | None) -> AsyncIterator[bytes]:
    sent = 0
    with closing(pieces):  # closes the spooled file also when a fault stops early
        for piece in pieces:
            if sent >= limit:
                break
            chunk = piece[:limit - sent]
            if not chunk:
                continue
            if corrupt_at is not None and sent <= corrupt_at < sent + len(chunk):
                i = corrupt_at - sent
                # Flip a run of bytes: the deflate stream or its CRC no longer checks out.
                chunk = chunk[:i] + bytes(b ^ 0x5A for b in chunk[i:i + 64]) + chunk[i + 64:]
            sent += len(chunk)
            yield chunk
            if bytes_per_second:
                await asyncio.sleep(len(chunk) / bytes_per_second)
    if drop:
        raise DroppedConnection("connection dropped by fault injection")


def download_routes(state: EmulatorState) -> list[BaseRoute]:
    """GET /_emulator/documents/{token}/{name}: the document behind an issued URL."""

    async def download(request: Request) -> Response:
        link = state.jobs.resolve_link(request.path_params["token"])
        api = link.job.api if link else "unknown"
        state.calls.record(f"{api}.download")
        if link is None or link.job.document is None:
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        fault: Fault | None = state.faults.download_fault(f"{api}.download", link.job.report_type)
        if state.clock.now() >= link.expires_at or (fault and fault.kind == FaultKind.EXPIRE_URL):
            return _s3_error(403, "AccessDenied", "Request has expired")
        if fault and fault.kind == FaultKind.SERVER_ERROR:
            return _s3_error(fault.status, "InternalError", "We encountered an internal error.")
        doc = link.job.document
        plain = link.job.plain_document
        size = doc.uncompressed_size if plain else doc.size
        limit, corrupt_at, drop, rate = size, None, False, None
        length = size
        if fault is not None:
            cut = max(1, int(size * fault.fraction))
            if fault.kind == FaultKind.TRUNCATE:
                limit = length = cut  # a well-formed response holding a cut gzip stream
            elif fault.kind == FaultKind.DROP_DOWNLOAD:
                limit, drop = cut, True  # Content-Length promises more than is sent
            elif fault.kind == FaultKind.CORRUPT:
                corrupt_at = min(size - 1, max(10, cut))
            elif fault.kind == FaultKind.SLOW:
                rate = max(1024.0, size / (fault.seconds or 5.0))
        headers = {
            "Content-Length": str(length),
            "ETag": f'"{doc.sha256[:32]}"',
            "x-amz-server-side-encryption": "AES256",
        }
        if link.content_encoding and not plain:
            headers["Content-Encoding"] = "gzip"
        return StreamingResponse(
            _stream(_pieces(doc.path, plain), limit, corrupt_at, drop, rate),
            media_type="application/octet-stream",
            headers=headers,
        )

    return [Route("/_emulator/documents/{token}/{name}", download, methods=["GET"])]
