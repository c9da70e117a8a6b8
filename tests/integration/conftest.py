"""Fixtures for integration tests against AWS stand-ins: a moto server on 127.0.0.1.

`moto_server` yields the endpoint URL of a real moto server (S3, DynamoDB, ...). It runs
moto's WSGI app in a child process, so the objects moto keeps in memory never count towards
the test process's memory (tests measure peak memory with tracemalloc). Point boto3 at it with
`endpoint_url=moto_server`; `aws_env` sets dummy credentials and a region so no real account is
ever reached.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from multiprocessing.connection import Connection

import pytest


def _serve_moto(conn: Connection) -> None:
    """Child process: start moto on a free port, report it, serve until terminated.

    moto's server answers on many threads, and its DynamoDB reads an item, checks the condition
    and writes without a lock (moto/dynamodb/models: update_item), so two conditional updates of
    one item could both succeed, which DynamoDB never allows (a two-process lease test caught it
    once). DynamoDB requests are therefore served one at a time; S3 stays concurrent.
    """
    import threading
    from collections.abc import Callable, Iterable
    from typing import Any

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    dynamodb = threading.Lock()

    def serialised(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            return app(environ, start_response)
        with dynamodb:
            return list(app(environ, start_response))

    server = make_server("127.0.0.1", 0, serialised, threaded=True,
                         request_handler=MotoRequestHandler)
    conn.send(server.server_address[1])
    conn.close()
    server.serve_forever()  # the parent terminates this process


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """The endpoint URL of a moto server in its own process, stopped after the session."""
    ctx = multiprocessing.get_context("spawn")  # no fork: the parent may be running threads
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_serve_moto, args=(child,), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(60):
            raise RuntimeError("moto server did not start within 60 s")
        port = parent.recv()
    except BaseException:
        proc.terminate()
        proc.join(10)
        raise
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.join(10)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy AWS credentials and region for boto3 (moto accepts any); no profile, no metadata."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
