"""Report jobs shared by the Ads and SP-API emulations: delays, status on the clock, documents.

A job's status is a pure function of the virtual time: queued for `queue_seconds`, processing
for `processing_seconds`, then its outcome. Its document is generated in a worker process as soon
as the job is created; the job reports PROCESSING until the document is spooled, the way a big
report at Amazon takes longer to build.

Why a process, not a thread: generating a million-row document is ~12 s of pure-Python work that
holds the GIL, and in a thread of the server it starved the event loop (clients timed out); its
memory peak also added to the server's. A worker process does the generating and the gzip
spooling and sends back only the SpooledDocument and its Truth, so plans must be picklable:
a `functools.partial` of a module-level function over frozen dataclasses and plain data.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache, partial
from pathlib import Path
from typing import Any

import numpy as np
from starlette.requests import Request

from amzlake.emulator.doc_worker import PRELOAD, BuiltDocument, build_document
from amzlake.emulator.documents import DocumentPlan, SpooledDocument, Truth
from amzlake.emulator.faults import Delays, Outcome
from amzlake.emulator.world import stable_int

log = logging.getLogger(__name__)


class JobStatus(StrEnum):
    """A job's state; each API renames these (Ads PENDING/COMPLETED, SP-API IN_QUEUE/FATAL, ...)."""

    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    DONE = "DONE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


_TERMINAL = {Outcome.DONE: JobStatus.DONE, Outcome.FAILED: JobStatus.FAILED,
             Outcome.CANCELLED: JobStatus.CANCELLED}


@dataclass
class ReportJob:
    """One report request as the emulator tracks it."""

    api: str
    report_id: str
    owner: str
    report_type: str
    request: dict[str, Any]
    dedupe_key: str
    created_at: datetime
    queue_seconds: float
    processing_seconds: float
    outcome: Outcome = Outcome.DONE
    failure_reason: str | None = None
    document_id: str | None = None
    document: SpooledDocument | None = None
    truth: Truth | None = None
    cancelled_at: datetime | None = None
    generation_error: str | None = None
    generation_seconds: float | None = None  # real time spent generating and spooling
    plain_document: bool = False  # served uncompressed (SP-API fault "uncompressed")
    _ready: threading.Event = field(default_factory=threading.Event, repr=False)
    _expects_document: bool = False

    def _elapsed(self, now: datetime) -> float:
        return (now - self.created_at).total_seconds()

    def status(self, now: datetime) -> JobStatus:
        """The status at virtual time `now`."""
        if self.cancelled_at is not None:
            return JobStatus.CANCELLED
        t = self._elapsed(now)
        if self.outcome == Outcome.STUCK or t < self.queue_seconds:
            return JobStatus.QUEUED
        if t < self.queue_seconds + self.processing_seconds:
            return JobStatus.PROCESSING
        if self._expects_document and not self._ready.is_set():
            return JobStatus.PROCESSING
        if self.generation_error is not None:
            return JobStatus.FAILED
        return _TERMINAL[self.outcome]

    def processing_started(self, now: datetime) -> datetime | None:
        """When processing began, once it has."""
        if self.status(now) in (JobStatus.QUEUED,) or (
            self.cancelled_at is not None and self._elapsed(self.cancelled_at) < self.queue_seconds
        ):
            return None
        return self.created_at + timedelta(seconds=self.queue_seconds)

    def processing_ended(self, now: datetime) -> datetime | None:
        """When processing ended, once the job is terminal."""
        status = self.status(now)
        if status in (JobStatus.QUEUED, JobStatus.PROCESSING):
            return None
        if self.cancelled_at is not None:
            return self.cancelled_at
        return self.created_at + timedelta(seconds=self.queue_seconds + self.processing_seconds)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the document is spooled (tests and benchmarks); returns whether it is."""
        return self._ready.wait(timeout)


@dataclass(frozen=True)
class DocumentLink:
    """An unauthenticated, expiring download URL for a job's document."""

    job: ReportJob
    expires_at: datetime
    content_encoding: bool


@cache
def _worker_context() -> multiprocessing.context.BaseContext:
    """The start method of document workers: forkserver where there is one, else spawn.

    Never plain fork: the server process runs threads (uvicorn, the executor's own), and forking
    a threaded process can copy a held lock into the child.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    # Process-wide, and only read when the fork server starts (once per process).
    ctx.set_forkserver_preload(list(PRELOAD))
    return ctx


class JobStore:
    """All report jobs, their document spool and download links; thread-safe.

    Documents are built by a pool of `workers` processes, started on the first document (a store
    that never builds one never starts a process) and stopped by `close`. Jobs reach the pool
    through one hand-off thread, in order: starting the pool (the fork server and its preloads)
    takes a few hundred milliseconds, and a create answered on the event loop must not wait for
    it, or every request behind it would arrive at the rate limiter in one bunch.
    """

    def __init__(self, clock_now: Callable[[], datetime], seed: int, delays: Delays,
                 spool_dir: Path | None = None, workers: int = 2) -> None:
        self._now = clock_now
        self._seed = seed
        self._delays = delays
        self._own_spool = spool_dir is None
        self.spool_dir = spool_dir or Path(tempfile.mkdtemp(prefix="amzlake-emulator-"))
        self._jobs: dict[str, ReportJob] = {}
        self._by_document: dict[str, ReportJob] = {}
        self._links: dict[str, DocumentLink] = {}
        self._lock = threading.Lock()
        self._counter = 0
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._handoff = ThreadPoolExecutor(1, thread_name_prefix="emulator-handoff")
        self._closed = False

    def close(self) -> None:
        """Stop the worker processes (also one busy with a document) and remove the spool."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        self._handoff.shutdown(wait=True, cancel_futures=True)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
            # shutdown() would wait for a running document (seconds for a big one): stop the
            # workers instead; Python 3.11 has no public call for it (3.14 adds terminate_workers).
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                proc.terminate()
            pool.shutdown(wait=True)
        if self._own_spool:
            shutil.rmtree(self.spool_dir, ignore_errors=True)

    def _submit(self, plan: Callable[[], DocumentPlan | None], path: Path) -> Future[BuiltDocument]:
        """Hand `plan` to a worker process, starting the pool (or replacing a broken one)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the job store is closed")
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self._workers, mp_context=_worker_context())
            pool = self._pool
        try:
            return pool.submit(build_document, plan, path)
        except BrokenProcessPool:
            # A worker died (killed, out of memory): the pool refuses work from then on.
            log.warning("document worker pool broken; starting a new one")
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            return self._submit(plan, path)

    def _draw_delays(self, api: str, n: int) -> tuple[float, float]:
        d = self._delays
        q, p = (d.ads_queue, d.ads_processing) if api == "ads" else (d.spapi_queue, d.spapi_processing)
        rng = np.random.default_rng(stable_int(self._seed, "delays", api, n))
        z = rng.standard_normal(2) * d.sigma
        # Lognormal around the medians; capped at 3 hours, Amazon's documented worst case.
        return (min(q * math.exp(z[0]), 10_800.0), min(p * math.exp(z[1]), 10_800.0))

    def create(self, *, api: str, owner: str, report_type: str, request: dict[str, Any],
               dedupe_key: str, plan: Callable[[], DocumentPlan | None] | None,
               outcome: Outcome = Outcome.DONE, failure_reason: str | None = None,
               document_id: str | None = None,
               delays: tuple[float, float] | None = None) -> ReportJob:
        """Register a new report job and start building its document in the background.

        `plan` (None: no document) runs in a worker process, so it must be picklable: e.g.
        `functools.partial(module_level_function, frozen_dataclass, ...)`, never a closure. The
        job reports PROCESSING until the document is spooled; its Truth comes back with it.
        """
        with self._lock:
            self._counter += 1
            n = self._counter
        if api == "ads":
            report_id = str(uuid.UUID(int=stable_int(self._seed, "ads-report", n, bits=128), version=4))
        else:
            report_id = str(50_000_000_000 + stable_int(self._seed, "spapi-report", n, bits=32))
        queue_s, processing_s = delays if delays is not None else self._draw_delays(api, n)
        job = ReportJob(
            api=api, report_id=report_id, owner=owner, report_type=report_type, request=request,
            dedupe_key=dedupe_key, created_at=self._now(), queue_seconds=queue_s,
            processing_seconds=processing_s, outcome=outcome, failure_reason=failure_reason,
            document_id=document_id, _expects_document=plan is not None,
        )
        with self._lock:
            self._jobs[job.report_id] = job
            if document_id is not None:
                self._by_document[document_id] = job
        if plan is not None:
            path = self.spool_dir / f"{job.api}-{job.report_id}.json.gz"
            submitted = time.perf_counter()
            try:
                handed = self._handoff.submit(self._submit, plan, path)
            except RuntimeError as e:  # closed while the request was answered
                handed = Future()
                handed.set_exception(e)
            handed.add_done_callback(partial(self._handed, job, submitted))
        else:
            job._ready.set()  # nothing to build
        return job

    def _handed(self, job: ReportJob, submitted: float, handed: Future[Future[BuiltDocument]]) -> None:
        """Follow the worker's future once the hand-off thread has submitted `job`'s plan."""
        done = partial(self._built, job, submitted)
        if handed.cancelled() or handed.exception() is not None:
            done(handed)  # never reached a worker: the same outcome as a failed build
        else:
            handed.result().add_done_callback(done)

    def _built(self, job: ReportJob, submitted: float, future: Future[BuiltDocument]) -> None:
        """Attach a worker's result to `job` (on the pool's management thread), or the reason it
        never reached a worker (on the hand-off thread)."""
        try:
            built = future.result()
            job.document, job.truth = built.document, built.truth
            job.generation_seconds = built.seconds
        except CancelledError:
            job.generation_error = "cancelled: the emulator is shutting down"
        except Exception as e:  # an emulator bug: surface it as a failed report, loudly
            log.error("generating the document of %s report %s failed", job.api, job.report_id,
                      exc_info=e)
            job.generation_error = f"{type(e).__name__}: {e}"
            job.failure_reason = "Report generation failed due to an internal error. Please retry"
        finally:
            if job.generation_seconds is None:
                job.generation_seconds = time.perf_counter() - submitted
            job._ready.set()

    def get(self, api: str, owner: str, report_id: str) -> ReportJob | None:
        """The job with this id if it belongs to `owner` in `api`."""
        job = self._jobs.get(report_id)
        return job if job is not None and job.api == api and job.owner == owner else None

    def find(self, api: str, report_id: str) -> ReportJob | None:
        """The job with this id in `api`, whoever owns it (inspection endpoints)."""
        job = self._jobs.get(report_id)
        return job if job is not None and job.api == api else None

    def list(self, api: str, owner: str) -> list[ReportJob]:
        """`owner`'s jobs in `api`, newest first."""
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.api == api and j.owner == owner]
        return sorted(jobs, key=lambda j: j.created_at, reverse=True)

    def all(self) -> list[ReportJob]:
        """Every job, oldest first."""
        with self._lock:
            return list(self._jobs.values())

    def find_live(self, api: str, owner: str, dedupe_key: str, now: datetime) -> ReportJob | None:
        """A queued or processing job of `owner` with the same normalised request, if any."""
        for job in self.list(api, owner):
            if job.dedupe_key == dedupe_key and job.status(now) in (
                JobStatus.QUEUED, JobStatus.PROCESSING,
            ):
                return job
        return None

    def by_document_id(self, document_id: str) -> ReportJob | None:
        """The job whose document (data or error) has this id."""
        return self._by_document.get(document_id)

    def cancel(self, job: ReportJob, now: datetime) -> None:
        """Mark `job` cancelled at `now` (callers check the API's own rules first)."""
        job.cancelled_at = now

    def link(self, job: ReportJob, ttl_seconds: float,
             content_encoding: bool = False) -> tuple[str, datetime]:
        """A fresh download token for `job`'s document and when it expires (virtual time)."""
        token = secrets.token_urlsafe(24)
        expires = self._now() + timedelta(seconds=ttl_seconds)
        with self._lock:
            self._links[token] = DocumentLink(job, expires, content_encoding)
        return token, expires

    def document_url(self, request: Request, job: ReportJob, ttl_seconds: float,
                     content_encoding: bool = False) -> tuple[str, datetime]:
        """An unauthenticated, presigned-looking download URL for `job`'s document and its expiry.

        The URL is absolute from the server root (also when the API is reached under a region
        prefix) and, like Amazon's S3 links, needs no auth header.
        """
        if job.document is None:
            raise LookupError(f"report {job.report_id} has no document")
        token, expires = self.link(job, ttl_seconds, content_encoding)
        stamp = self._now().strftime("%Y%m%dT%H%M%SZ")
        query = (f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={stamp}"
                 f"&X-Amz-Expires={max(1, round(ttl_seconds))}")
        url = request.url.replace(
            path=f"/_emulator/documents/{token}/report-{job.report_id}.json.gz", query=query
        )
        return str(url), expires

    def resolve_link(self, token: str) -> DocumentLink | None:
        """The link behind a download token, if it was ever issued."""
        return self._links.get(token)
