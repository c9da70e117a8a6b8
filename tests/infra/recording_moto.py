"""A moto server that records every request it serves: who signed it (the access key id), which
service and operation, and the parameters that name its resources. Tests read the record back to
check each call against the IAM policy of the role that made it (tests/infra/iam_eval.py).

It runs in its own process (as tests/integration/conftest.py's moto server does, DynamoDB served
one request at a time) and appends one JSON line per request to a file the test names.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import re
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

_CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/aws4_request")
# Request bodies worth keeping (they name the resources): JSON and form protocols, and S3's
# multi-object delete; never object data.
_KEEP_BODY = 64 * 1024


def _record(environ: dict[str, Any], body: bytes) -> dict[str, Any]:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    m = _CREDENTIAL.search(auth)
    key_id, region, service = (m.group(1), m.group(2), m.group(3)) if m else (None, None, None)
    query = environ.get("QUERY_STRING", "")
    record: dict[str, Any] = {
        "key_id": key_id, "region": region, "service": service,
        "method": environ["REQUEST_METHOD"], "path": environ.get("PATH_INFO", ""),
        "query": [list(p) for p in parse_qsl(query, keep_blank_values=True)],
        "target": environ.get("HTTP_X_AMZ_TARGET"),
        "copy_source": environ.get("HTTP_X_AMZ_COPY_SOURCE"),
        "sse_key": environ.get("HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION_AWS_KMS_KEY_ID"),
    }
    text = None
    if service != "s3" or "delete" in dict(parse_qsl(query, keep_blank_values=True)):
        text = body[:_KEEP_BODY].decode("utf-8", "replace")
    record["body"] = text
    return record


def _injected(faults_path: str, target: str | None) -> bytes | None:
    """The error body to answer instead, when the faults file holds one for `target`."""
    path = Path(faults_path)
    if not target or not path.exists():
        return None
    faults = json.loads(path.read_text() or "{}")
    fault = faults.get(target)
    if not fault or fault["times"] <= 0:
        return None
    fault["times"] -= 1
    path.write_text(json.dumps(faults))
    return json.dumps({"__type": fault["code"], "message": "injected by the test"}).encode()


def _serve(conn: Connection, log_path: str, faults_path: str) -> None:
    """Child process: moto on a free port, every request appended to `log_path`; a JSON-protocol
    operation named in `faults_path` ({"AWSGlue.CreateDatabase": {"code": ..., "times": n}})
    is answered with that error instead (after being recorded)."""
    import threading
    from collections.abc import Callable, Iterable

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    dynamodb, writing = threading.Lock(), threading.Lock()
    log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 (lives as long as the process)

    def recording(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length:
            body = environ["wsgi.input"].read(length)
        elif environ.get("wsgi.input_terminated"):  # chunked (pyarrow's S3 client sends so)
            body = environ["wsgi.input"].read()
        else:
            body = b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        record = _record(environ, body)
        statuses: list[str] = []

        def start(status: str, headers: Any, *args: Any) -> Any:
            statuses.append(status)
            return start_response(status, headers, *args)

        with writing:
            error = _injected(faults_path, environ.get("HTTP_X_AMZ_TARGET"))
        if error is not None:
            start("400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"),
                                      ("Content-Length", str(len(error)))])
            out: Iterable[bytes] = [error]
        elif environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with dynamodb:
                out = list(app(environ, start))
        else:
            out = list(app(environ, start))
        record["status"] = int(statuses[0].split()[0]) if statuses else None
        if not environ.get("PATH_INFO", "").startswith("/moto-api"):
            with writing:
                log.write(json.dumps(record) + "\n")
                log.flush()
        return out

    server = make_server("127.0.0.1", 0, recording, threaded=True,
                         request_handler=MotoRequestHandler)
    conn.send(server.server_address[1])
    conn.close()
    server.serve_forever()


@contextmanager
def recording_moto(log_path: Path, faults_path: Path) -> Iterator[str]:
    """A recording moto server's endpoint URL; stopped on exit."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_serve, args=(child, str(log_path), str(faults_path)), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(60):
            raise RuntimeError("moto server did not start within 60 s")
        port = parent.recv()
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.join(10)


def read_records(log_path: Path) -> list[dict[str, Any]]:
    """Every request recorded so far."""
    if not log_path.exists():
        return []
    return [json.loads(line) for line in log_path.read_text().splitlines() if line]
