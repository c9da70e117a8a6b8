"""The emulator's job store and socket: what keeps its answers prompt under a burst of creates."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest

from amzlake.emulator.faults import Delays
from amzlake.emulator.jobs import JobStatus, JobStore, ReportJob
from amzlake.emulator.server import bind_socket
from tests.integration.test_emulator_core import numbers_plan

NOW = datetime(2026, 11, 20, 15, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    jobs = JobStore(lambda: NOW, seed=1, delays=Delays(), spool_dir=tmp_path)
    yield jobs
    jobs.close()


def _gate(store: JobStore, monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Hold every hand-off to the worker pool until the returned event is set."""
    release = threading.Event()
    submit = store._submit

    def gated(*args: object) -> object:
        release.wait(60)
        return submit(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "_submit", gated)
    return release


def _create(store: JobStore, rows: int) -> ReportJob:
    return store.create(api="spapi", owner="test", report_type="TEST", request={},
                        dedupe_key=f"k{rows}", plan=partial(numbers_plan, rows), delays=(0.0, 0.0))


def test_create_answers_before_the_worker_pool_has_the_plan(
        store: JobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Starting the pool takes a few hundred ms; a create answered on the server's event loop
    # must not wait for it (it held every request behind it, which then hit the rate limiter
    # in one bunch).
    release = _gate(store, monkeypatch)
    created: list[ReportJob] = []
    creating = threading.Thread(target=lambda: created.append(_create(store, 500)))
    creating.start()
    creating.join(20)  # the gate stays shut: a create that waits for the hand-off never returns
    assert not creating.is_alive() and len(created) == 1
    job = created[0]
    assert job.status(NOW) == JobStatus.PROCESSING
    assert not job.wait_ready(0)

    release.set()
    assert job.wait_ready(60)
    assert job.status(NOW) == JobStatus.DONE
    assert job.truth is not None and job.truth.rows == 500
    assert job.document is not None and job.document.size > 0


def test_closing_with_plans_not_yet_handed_over_fails_their_jobs(
        store: JobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    release = _gate(store, monkeypatch)
    first, second = _create(store, 10), _create(store, 20)  # first holds the hand-off thread
    closing = threading.Thread(target=store.close)
    closing.start()
    assert second.wait_ready(30)  # cancelled while waiting for the hand-off thread
    release.set()
    closing.join(30)
    assert not closing.is_alive()
    assert first.wait_ready(30)  # handed over after close: refused by the closed store
    for job in (first, second):
        assert job.status(NOW) == JobStatus.FAILED
        assert job.document is None
    assert second.generation_error == "cancelled: the emulator is shutting down"
    assert first.generation_error == "RuntimeError: the job store is closed"


def test_accepted_connections_send_without_nagle_delay() -> None:
    # Without TCP_NODELAY, a kept-alive connection's answer (headers, then body) waited ~40 ms
    # for the client's delayed ACK. asyncio sets it only on sockets made with IPPROTO_TCP.
    async def accepted_nodelay() -> int:
        server_side: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            server_side.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        listener = bind_socket("127.0.0.1", 0)
        server = await asyncio.start_server(on_connect, sock=listener)
        async with server:
            _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
            flag = await asyncio.wait_for(server_side, 10)
            writer.close()
            return flag

    assert asyncio.run(accepted_nodelay()) != 0
