"""Fixtures for integration tests against AWS stand-ins: a moto server on 127.0.0.1.

`moto_server` yields the endpoint URL of a real moto server (S3, DynamoDB, ...). It runs
`ThreadedMotoServer` in a child process, so the objects moto keeps in memory never count towards
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
    """Child process: start moto on a free port, report it, serve until terminated."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    conn.send(server.get_host_and_port()[1])
    conn.close()
    import threading

    threading.Event().wait()  # the parent terminates this process


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
