"""The runner: the durable state machine that takes each slice from planned to downloaded.

Per slice: create the report -> record its id in the ledger (before any wait) -> poll with a
growing interval (closer once the run is down to its last slices), bounded by the report type's
maximum wait -> download the document, verified, into the raw zone -> record the raw object.
Every step is a compare-and-set on the ledger, under a lease, so a crash anywhere (kill -9
included) leaves a state the next run resumes from:

- planned with no create sent: create;
- planned with a create sent but no id recorded (the crash came between the two): re-attach
  instead of asking again. Ads answers a repeated create with HTTP 425 naming the live report;
  for SP-API the runner looks the report up with getReports (type, marketplace, data times,
  created since the create was sent, not already another slice's). Ads has no way to list
  reports, so if that report has already finished when the run resumes, Amazon makes a new one:
  one extra report, never two live ones;
- requested or processing: poll the recorded report id;
- downloaded: nothing left to do here (the transform takes it from there).

FATAL and FAILED reports are classified (a request Amazon refused as invalid is `fatal-input` and
is not asked again as is); CANCELLED is "no data" (`empty`); an expired document URL is asked for
again; a truncated or corrupt download is never stored as good.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Protocol

import orjson

from amzlake.catalog.vendor import DateRule, vendor_report_type
from amzlake.errors import (
    ApiCallError,
    ApiRequestError,
    AuthError,
    DocumentCorrupt,
    NotFoundError,
    OutcomeUnknown,
    RemoteError,
    StaleEntry,
    ThrottledError,
    UrlExpired,
)
from amzlake.ingest import states
from amzlake.ingest.states import CREATE_SENT, FailureClass, SliceState
from amzlake.slices import (
    Account,
    AdsReportSpec,
    Slice,
    Source,
    VendorReportSpec,
    is_compressed,
    is_data_document,
    raw_key,
    spec_from_normalised,
)
from amzlake.sources.ads import AdsClient, AdsReportStatus
from amzlake.sources.spapi import ProcessingStatus, SpApiClient, data_times
from amzlake.storage.ledger import Ledger, LedgerEntry, RawObject
from amzlake.storage.objects import GzipVerifier, ObjectStore

log = logging.getLogger(__name__)

REFUSED = "create refused: no report was made"
# Words of Amazon's FATAL texts that mean "your request was invalid" (spapi-facts.md §5):
# asking again unchanged would only fail again.
_INPUT_FATAL = re.compile(
    r"requires the|reportOption|client error|parameters are valid|dataStartTime|dataEndTime|"
    r"marketplace|invalid|not supported|must be",
    re.IGNORECASE,
)
# Ads: "Report generation failed due to an internal error. Please retry" (ads-facts.md §4).
_ADS_RETRY = re.compile(r"retry|internal error|temporar", re.IGNORECASE)


class Clock(Protocol):
    """Time for the runner: aware UTC `now()` and `sleep(seconds)` on the same clock."""

    def now(self) -> datetime: ...

    async def sleep(self, virtual_seconds: float) -> None: ...


class Clients(Protocol):
    """The API clients an account's calls go through."""

    def ads(self, account: Account) -> AdsClient: ...

    def spapi(self, account: Account) -> SpApiClient: ...


@dataclass(frozen=True)
class RunSettings:
    """How the runner paces itself (seconds are on the runner's clock)."""

    download_concurrency: int = 8
    # Slices of one account whose create is under way (its "create sent" mark recorded, waiting
    # for a rate-limit token or its answer). Waiting for reports is not bounded: it costs a poll
    # now and then. Bounded here so a backfill of thousands of slices marks a few at a time, and a
    # crash leaves only those few to look up with getReports (itself slow: 0.0222/s).
    create_concurrency: int = 8
    poll_initial: float = 30.0
    poll_factor: float = 1.2  # see RunConfig.poll_factor
    poll_max: float = 300.0
    # Once at most `tail_slices` slices of a run are unfinished, their reports are checked every
    # `tail_poll_share` of their age (never closer than poll_initial): the run ends when the last
    # one is seen, and the poll budget has nothing else to do by then. With the geometric schedule
    # alone, the last report could wait ~25% of its age for its next check at ages of 5-15
    # minutes (benchmarks/ingest_schedule).
    tail_slices: int = 4
    tail_poll_share: float = 0.05
    max_wait: Callable[[str, str], timedelta] = field(default=lambda source, rt: timedelta(hours=3))
    # Renewed at every poll, so a run killed with -9 frees its slices this long after it died.
    lease: timedelta = timedelta(minutes=15)
    download_attempts: int = 4

    def poll_delay(self, polls: int) -> float:
        """Seconds between check number `polls` and the next: a growing interval, capped."""
        return min(self.poll_initial * self.poll_factor ** max(0, polls), self.poll_max)

    def tail_poll_delay(self, age: float) -> float:
        """Seconds between checks of a report `age` seconds old while its run is in its tail."""
        return min(max(self.poll_initial, self.tail_poll_share * age), self.poll_max)


class RunTail:
    """Counts a run's unfinished slices; `reached` is set once at most `size` remain."""

    def __init__(self, unfinished: int, size: int) -> None:
        self.unfinished = unfinished
        self.size = size
        self.reached = asyncio.Event()
        if unfinished <= size:
            self.reached.set()

    def finished(self) -> None:
        """One slice is done with this run (whatever its end)."""
        self.unfinished -= 1
        if self.unfinished <= self.size:
            self.reached.set()


@dataclass(frozen=True)
class SliceResult:
    """Where one slice ended up in this run."""

    slice_key: str
    source: str
    account_id: str
    report_type: str
    state: SliceState
    failure_class: FailureClass | None = None
    error: str | None = None
    note: str | None = None
    skipped: bool = False  # another run holds its lease


@dataclass
class RunResult:
    """What a run did."""

    results: list[SliceResult] = field(default_factory=list)
    auth_error: str | None = None

    def counts(self) -> dict[str, int]:
        """Slices per final state (and `skipped`)."""
        c = Counter("skipped" if r.skipped else r.state.value for r in self.results)
        return dict(sorted(c.items()))

    @property
    def failed(self) -> list[SliceResult]:
        """Slices that ended failed."""
        return [r for r in self.results if r.state is SliceState.FAILED and not r.skipped]

    @property
    def waiting(self) -> list[SliceResult]:
        """Slices whose report is still being made (picked up by the next run)."""
        return [r for r in self.results
                if r.state in (SliceState.REQUESTED, SliceState.PROCESSING) and not r.skipped]


class Readiness(StrEnum):
    """What one status check found: still queued or processing, ready, or ended (recorded)."""

    QUEUED = "queued"
    PROCESSING = "processing"
    READY = "ready"  # the document can be downloaded
    ENDED = "ended"  # failed or empty, already recorded in the ledger


@dataclass(frozen=True)
class Check:
    """One status check: the entry after it, what it found and the URL Amazon gave, if any."""

    entry: LedgerEntry
    readiness: Readiness
    url: str | None = None


Listener = Callable[[LedgerEntry], None]


def classify_fatal(text: str | None) -> FailureClass:
    """`fatal-input` when Amazon's FATAL text says the request was invalid, else `fatal-remote`."""
    return FailureClass.FATAL_INPUT if text and _INPUT_FATAL.search(text) else FailureClass.FATAL_REMOTE


def classify_ads_failure(reason: str | None) -> FailureClass:
    """Ads FAILED: `retryable` when Amazon says to retry, else `fatal-remote`."""
    return FailureClass.RETRYABLE if reason and _ADS_RETRY.search(reason) else FailureClass.FATAL_REMOTE


def _seconds(now: datetime, until: datetime) -> float:
    return max(0.0, (until - now).total_seconds())


def _error_text(e: BaseException) -> str:
    return str(e).splitlines()[0][:500] if str(e) else type(e).__name__


class Runner:
    """Works slices through the state machine, many at once, against one ledger and raw zone."""

    def __init__(self, *, ledger: Ledger, store: ObjectStore, clients: Clients, clock: Clock,
                 accounts: Mapping[tuple[str, str], Account], owner: str,
                 settings: RunSettings | None = None, listener: Listener | None = None,
                 raw_prefix: str = "") -> None:
        self.ledger = ledger
        self.store = store
        self.clients = clients
        self.clock = clock
        self.accounts = accounts
        self.owner = owner
        self.settings = settings or RunSettings()
        self.listener = listener or (lambda entry: None)
        self.raw_prefix = raw_prefix
        self._downloads = asyncio.Semaphore(self.settings.download_concurrency)
        self._creates: dict[tuple[str, str], asyncio.Semaphore] = {}
        self._auth_failed: AuthError | None = None
        # Remote ids other slices hold (a lost create's lookup skips them); read on first need.
        self._known_remote_ids: set[str] | None = None
        self.tail = RunTail(0, self.settings.tail_slices)  # each run() counts its own slices

    # ---- ledger helpers -------------------------------------------------------------------

    def update(self, entry: LedgerEntry, changes: Mapping[str, object]) -> LedgerEntry:
        """The entry after `changes` (compare-and-set), announced to the listener."""
        updated = self.ledger.update(entry, changes)
        self.listener(updated)
        return updated

    def _renew(self, entry: LedgerEntry) -> LedgerEntry:
        """The entry with this run's lease extended; StaleEntry if another run took it over."""
        held = self.ledger.acquire(entry.slice_key, self.owner, self.clock.now(), self.settings.lease)
        if held is None:
            raise StaleEntry(f"slice {entry.slice_key}: the lease passed to another run")
        return held

    def _create_slot(self, entry: LedgerEntry) -> asyncio.Semaphore:
        """The account's bound on creates under way (RunSettings.create_concurrency)."""
        key = (entry.source, entry.account_id)
        if key not in self._creates:
            self._creates[key] = asyncio.Semaphore(self.settings.create_concurrency)
        return self._creates[key]

    @asynccontextmanager
    async def lease_kept(self, entry: LedgerEntry) -> AsyncIterator[None]:
        """Keep this run's lease on the slice for as long as the block runs.

        A create can wait for its rate-limit token far longer than a lease (SP-API: one create a
        minute per account), and another run must not take the slice over meanwhile, find no
        report and ask for one too. Extending keeps the entry's version, so the held copy stays
        good for the update that follows.
        """
        lease = self.settings.lease

        async def extend() -> None:
            while True:
                await self.clock.sleep(lease.total_seconds() / 3)
                if not self.ledger.extend(entry.slice_key, self.owner, self.clock.now(), lease):
                    return  # taken over: the next update will say so (StaleEntry)

        keeper = asyncio.ensure_future(extend())
        try:
            yield
        finally:
            keeper.cancel()

    def slice_for(self, entry: LedgerEntry) -> Slice:
        """The slice a ledger entry stands for, with its configured account."""
        account = self.accounts.get((entry.source, entry.account_id))
        if account is None:
            raise LookupError(f"slice {entry.slice_key}: account {entry.source}/{entry.account_id} "
                              "is not in the configuration any more")
        return Slice(account, spec_from_normalised(entry.source, entry.spec), entry.start, entry.end)

    # ---- the run --------------------------------------------------------------------------

    async def run(self, entries: Iterable[LedgerEntry]) -> RunResult:
        """Work every entry (planned or live) as far as it goes in this run."""
        work = list(entries)
        self._remote_ids()
        self.tail = RunTail(len(work), self.settings.tail_slices)
        results = await asyncio.gather(*(self._guarded(e) for e in work))
        out = RunResult(list(results))
        if self._auth_failed is not None:
            out.auth_error = str(self._auth_failed)
        return out

    async def _guarded(self, entry: LedgerEntry) -> SliceResult:
        held = self.ledger.acquire(entry.slice_key, self.owner, self.clock.now(), self.settings.lease)
        if held is None:
            return SliceResult(entry.slice_key, entry.source, entry.account_id, entry.report_type,
                               entry.state, skipped=True, note="another run holds this slice")
        final = held
        try:
            final = await self._work(held)
        except AuthError as e:
            # Credentials are wrong for every slice of the account: stop asking, keep the state.
            self._auth_failed = e
            final = self.ledger.get(entry.slice_key) or held
        except StaleEntry:
            final = self.ledger.get(entry.slice_key) or held
        except Exception as e:  # a bug or an unforeseen answer: record it, never lose the slice
            log.exception("slice %s: unexpected error", entry.slice_key)
            final = self.record_unexpected(held, e)
        finally:
            self.tail.finished()
            released = self.ledger.release(entry.slice_key, self.owner)
            final = released or final
        return SliceResult(final.slice_key, final.source, final.account_id, final.report_type,
                           final.state, final.failure_class, final.error, final.note)

    def record_unexpected(self, entry: LedgerEntry, error: BaseException) -> LedgerEntry:
        """The slice's entry with an unexpected error recorded (retryable) if it was unfinished."""
        final = self.ledger.get(entry.slice_key) or entry
        if final.state in (SliceState.PLANNED, SliceState.REQUESTED, SliceState.PROCESSING):
            final = self.update(final, states.mark_failed(
                final, FailureClass.RETRYABLE, f"unexpected error: {_error_text(error)}",
                self.clock.now()))
        return final

    async def _work(self, entry: LedgerEntry) -> LedgerEntry:
        if self._auth_failed is not None:
            return entry
        if entry.state is SliceState.PLANNED:
            # A create may wait long for its turn and its token: keep the lease meanwhile.
            async with self.lease_kept(entry), self._create_slot(entry):
                entry = await self.request(entry)
        if entry.state in (SliceState.REQUESTED, SliceState.PROCESSING):
            entry = await self._wait_and_fetch(entry)
        return entry

    def _remember(self, report_id: str) -> None:
        # Only once read: a step that never looks a report up never scans the ledger for them.
        if self._known_remote_ids is not None:
            self._known_remote_ids.add(report_id)

    def _remote_ids(self) -> set[str]:
        if self._known_remote_ids is None:
            self._known_remote_ids = {
                e.remote_report_id for e in self.ledger.query() if e.remote_report_id
            }
        return self._known_remote_ids

    # ---- create / re-attach ---------------------------------------------------------------

    async def request(self, entry: LedgerEntry) -> LedgerEntry:
        """The planned entry once its report is asked for (or re-attached); failures recorded."""
        slice_ = self.slice_for(entry)
        now = self.clock.now()
        try:
            if entry.note == CREATE_SENT and slice_.source is Source.VENDOR:
                found = await self._find_vendor_report(entry, slice_)
                if found is not None:
                    self._remember(found)
                    return self.update(entry, states.mark_requested(entry, found, now, attached=True))
            # The intent goes to the ledger first: a crash after the create is then recognisable.
            entry = self.update(entry, states.mark_create_sent(entry, now))
            if slice_.source is Source.ADS:
                assert isinstance(slice_.spec, AdsReportSpec)
                created = await self.clients.ads(slice_.account).create_report(
                    slice_.account.account_id, slice_.spec.canonical(), _as_date(slice_.start),
                    _as_date(slice_.end))
                report_id, attached = created.report_id, created.duplicate
            else:
                assert isinstance(slice_.spec, VendorReportSpec)
                start, end = _vendor_times(slice_)
                report_id = await self.clients.spapi(slice_.account).create_report(
                    slice_.account.marketplace_id, _vendor_spec(slice_), start, end)
                attached = False
        except OutcomeUnknown:
            # The create may have been made: look for it once now, else leave it for next run.
            found = await self._find_vendor_report(entry, slice_)
            if found is None:
                return self.update(entry, states.mark_failed(
                    entry, FailureClass.RETRYABLE, "the create's answer was lost; "
                    "no report found for it yet", self.clock.now(),
                    retry_at=self.clock.now() + timedelta(minutes=5)))
            report_id, attached = found, True
        except ThrottledError as e:
            return self.update(entry, states.mark_failed(
                entry, FailureClass.THROTTLED, _error_text(e), self.clock.now(), note=REFUSED))
        except (NotFoundError, ApiRequestError) as e:
            return self.update(entry, states.mark_failed(
                entry, FailureClass.FATAL_INPUT, _error_text(e), self.clock.now(), note=REFUSED))
        except (RemoteError, ApiCallError) as e:  # a server error: the report may exist
            return self.update(entry, states.mark_failed(
                entry, FailureClass.RETRYABLE, _error_text(e), self.clock.now()))
        self._remember(report_id)
        return self.update(entry, states.mark_requested(entry, report_id, self.clock.now(),
                                                         attached=attached))

    def _lost_creates_alike(self, entry: LedgerEntry, dated: bool) -> bool:
        others = self.ledger.query(states=[SliceState.PLANNED, SliceState.FAILED],
                                   source=entry.source, account_id=entry.account_id,
                                   report_type=entry.report_type)
        return any(_lost_create_alike(entry, other, dated) for other in others)

    async def _find_vendor_report(self, entry: LedgerEntry, slice_: Slice) -> str | None:
        """The live (or finished) report a lost create made, if getReports can tell which it is.

        getReports shows a report's type, marketplaces, data times and creation time, never its
        reportOptions; reports of types that send no data times (forecasting, coupons,
        promotions) show the time they were made instead. If another slice's create was lost as
        well and getReports cannot tell the two apart (same type, and same data times where the
        type sends them), nothing is attached: a report too many costs a little quota, a report
        attached to the wrong slice would file its rows under the wrong options.
        """
        assert isinstance(slice_.spec, VendorReportSpec)
        start, end = _vendor_times(slice_)
        wanted = {k: _parse_time(v) for k, v in data_times(slice_.spec, start, end).items()}
        if self._lost_creates_alike(entry, dated=bool(wanted)):
            log.warning("slice %s: another lost create looks the same to getReports; "
                        "asking again rather than guessing", entry.slice_key)
            return None
        # Reports made since the create was sent (a little before, for clocks that differ).
        since = (entry.requested_at or entry.updated_at) - timedelta(minutes=5)
        candidates = []
        async for report in self.clients.spapi(slice_.account).get_reports(
            [slice_.report_type], marketplace_ids=[slice_.account.marketplace_id],
            created_since=since,
        ):
            if report.report_id in self._remote_ids():
                continue
            if report.processing_status in (ProcessingStatus.CANCELLED, ProcessingStatus.FATAL):
                continue
            if not wanted or (wanted.get("dataStartTime") == report.data_start_time
                              and wanted.get("dataEndTime") == report.data_end_time):
                candidates.append(report)
        if not candidates:
            return None
        # Several identical requests of other option sets may match: take the earliest, which
        # is the one created closest after our intent was recorded.
        candidates.sort(key=lambda r: r.created_time or since)
        return candidates[0].report_id

    # ---- wait -----------------------------------------------------------------------------

    async def _wait_and_fetch(self, entry: LedgerEntry) -> LedgerEntry:
        s = self.settings
        assert entry.remote_report_id is not None
        started = entry.requested_at or self.clock.now()
        deadline = self.deadline(entry)
        delay = s.poll_initial
        # A resumed slice waited already: start its polls where a fresh one would be by now.
        waited = (self.clock.now() - started).total_seconds()
        while delay < s.poll_max and waited > delay * 2:
            delay *= s.poll_factor
        while True:
            entry = self._renew(entry)
            try:
                check = await self.check(entry)
                if check.readiness is Readiness.READY:
                    async with self.lease_kept(check.entry):  # and a download for its turn
                        return await self.fetch(check.entry, check.url)
            except (NotFoundError, ThrottledError, RemoteError) as e:
                return self.poll_failed(entry, e)
            entry = check.entry
            if check.readiness is Readiness.ENDED:
                return entry
            polled = self.clock.now()
            if polled >= deadline:
                return self.waited_out(entry)
            await self.until_next_check(polled, started, min(polled + timedelta(seconds=delay), deadline))
            delay = min(delay * s.poll_factor, s.poll_max)

    async def until_next_check(self, polled: datetime, started: datetime, due: datetime) -> None:
        """Sleep until `due`, the next status check, or less once the run reaches its tail: then
        the check is `tail_poll_delay` after the last one (`polled`), if that comes sooner."""
        if not self.tail.reached.is_set():
            sleeper = asyncio.ensure_future(self.clock.sleep(_seconds(self.clock.now(), due)))
            waker = asyncio.ensure_future(self.tail.reached.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()
            if not self.tail.reached.is_set():
                return
        age = (polled - started).total_seconds()
        due = min(due, polled + timedelta(seconds=self.settings.tail_poll_delay(age)))
        await self.clock.sleep(_seconds(self.clock.now(), due))

    def deadline(self, entry: LedgerEntry) -> datetime:
        """When waiting for the entry's report stops (its request time plus the maximum wait)."""
        started = entry.requested_at or self.clock.now()
        return started + self.settings.max_wait(entry.source, entry.report_type)

    def waited_out(self, entry: LedgerEntry) -> LedgerEntry:
        """The live entry with "still not ready" recorded: the next run picks it up."""
        now = self.clock.now()
        started = entry.requested_at or now
        waited_h = (now - started).total_seconds() / 3600
        return self.update(entry, states.mark_waited_out(
            entry, f"still not ready after {waited_h:.1f} h; the next run picks it up", now))

    def poll_failed(self, entry: LedgerEntry, error: ApiCallError) -> LedgerEntry:
        """The entry with a failed status check or download request recorded.

        A report that is gone (404) is failed, retryable (asked again next run); throttling or
        server errors leave it live with a note (polled again later).
        """
        # The check may have recorded something (a document id) before the error: start from it.
        entry = self.ledger.get(entry.slice_key) or entry
        if entry.state not in states.LIVE_STATES:
            return entry
        if isinstance(error, NotFoundError):
            return self.update(entry, states.mark_failed(
                entry, FailureClass.RETRYABLE, f"the report is gone: {_error_text(error)}",
                self.clock.now()))
        return self.update(entry, states.mark_waited_out(
            entry, f"polling stopped: {_error_text(error)}", self.clock.now()))

    async def check(self, entry: LedgerEntry) -> Check:
        """One status check of a live entry's report, without downloading its document.

        Ends that need no document are recorded here (Ads FAILED, SP-API CANCELLED; a FATAL's
        error document is kept and classified); READY means `fetch` may download. Raises the
        client's errors (NotFoundError, ThrottledError, RemoteError) for `poll_failed`.
        """
        slice_ = self.slice_for(entry)
        assert entry.remote_report_id is not None
        if slice_.source is Source.ADS:
            report = await self.clients.ads(slice_.account).get_report(
                slice_.account.account_id, entry.remote_report_id)
            if report.status is AdsReportStatus.COMPLETED:
                return Check(entry, Readiness.READY, report.url)
            if report.status is AdsReportStatus.FAILED:
                reason = report.failure_reason or "Amazon reported FAILED without a reason"
                return Check(self.update(entry, states.mark_failed(
                    entry, classify_ads_failure(reason), f"Ads report FAILED: {reason}",
                    self.clock.now())), Readiness.ENDED)
            return self._waiting(entry, report.status is AdsReportStatus.PROCESSING)
        client = self.clients.spapi(slice_.account)
        vendor = await client.get_report(entry.remote_report_id)
        status = vendor.processing_status
        if status is ProcessingStatus.CANCELLED:
            return Check(self.update(entry, states.mark_empty(
                entry, self.clock.now(), "Amazon cancelled the report: no data for the range")),
                Readiness.ENDED)
        if status in (ProcessingStatus.DONE, ProcessingStatus.FATAL):
            document_id = vendor.report_document_id
            if document_id is None:
                if status is ProcessingStatus.DONE:
                    raise RemoteError(f"spapi.getReport: report {vendor.report_id} is DONE "
                                      "without a reportDocumentId", operation="spapi.getReport")
                return Check(self.update(entry, states.mark_failed(
                    entry, FailureClass.FATAL_REMOTE, "FATAL without an error document",
                    self.clock.now())), Readiness.ENDED)
            entry = self.update(entry, {"remote_document_id": document_id,
                                        "updated_at": self.clock.now()})
            if status is ProcessingStatus.DONE:
                return Check(entry, Readiness.READY)

            async def fresh_url() -> str:
                return (await client.get_report_document(document_id)).url

            document = await client.get_report_document(document_id)
            return Check(await self._fatal(entry, slice_, document.url, fresh_url,
                                           client.download, document_id,
                                           compressed=document.compression is not None),
                         Readiness.ENDED)
        return self._waiting(entry, status is ProcessingStatus.IN_PROGRESS)

    def _waiting(self, entry: LedgerEntry, processing: bool) -> Check:
        if processing and entry.state is SliceState.REQUESTED:
            entry = self.update(entry, states.mark_processing(entry, self.clock.now()))
        return Check(entry, Readiness.PROCESSING if processing else Readiness.QUEUED)

    async def fetch(self, entry: LedgerEntry, url: str | None = None) -> LedgerEntry:
        """The entry once its ready report's document is in the raw zone (or, if every attempt
        failed, left live with the reason). `url`: the one the status check gave, if any."""
        slice_ = self.slice_for(entry)
        report_id = entry.remote_report_id
        assert report_id is not None
        if slice_.source is Source.ADS:
            ads = self.clients.ads(slice_.account)

            async def ads_url() -> str:
                again = await ads.get_report(slice_.account.account_id, report_id)
                if not again.url:
                    raise UrlExpired("ads.getAsyncReport: a COMPLETED report without a url",
                                     operation="ads.getAsyncReport")
                return again.url

            # Ads documents are always gzip (GZIP_JSON; CSV for a few types, gzip too).
            return await self._download(entry, slice_, url or await ads_url(), ads_url,
                                        ads.download, None, compressed=True)
        spapi = self.clients.spapi(slice_.account)
        document_id = entry.remote_document_id
        if document_id is None:
            raise RemoteError(f"slice {entry.slice_key}: no reportDocumentId recorded yet; "
                              "check the report first", operation="spapi.getReportDocument")

        async def spapi_url() -> str:
            return (await spapi.get_report_document(document_id)).url

        # compressionAlgorithm absent: the bytes are the document as is (spapi-facts.md §3).
        document = await spapi.get_report_document(document_id)
        return await self._download(entry, slice_, document.url, spapi_url, spapi.download,
                                    document_id, compressed=document.compression is not None)

    # ---- download -------------------------------------------------------------------------

    async def _store(self, slice_: Slice, url: str, fresh_url: Callable[[], Awaitable[str]],
                     download: Callable[[str], AsyncIterator[bytes]], key_for: Callable[[datetime], str],
                     compressed: bool = True,
                     ) -> tuple[RawObject | None, GzipVerifier | None, str]:
        """Stream the document into the raw zone, verified (a gzip document's stream is inflated
        and checked; a plain one is checked against its Content-Length by the HTTP client);
        retries with fresh URLs."""
        problem = ""
        for attempt in range(self.settings.download_attempts):
            if attempt:
                try:
                    url = await fresh_url()
                except (ApiCallError, RemoteError) as e:
                    problem = f"asking for a fresh URL failed: {_error_text(e)}"
                    continue
            fetched_at = self.clock.now()
            verifier = GzipVerifier() if compressed else None
            try:
                async with self._downloads:
                    info = await self.store.put_stream(key_for(fetched_at), download(url),
                                                       verify=verifier)
            except UrlExpired as e:
                problem = f"the document URL expired: {_error_text(e)}"
                continue
            except DocumentCorrupt as e:
                problem = f"the download was corrupt and was not kept: {_error_text(e)}"
                continue
            except (RemoteError, ApiCallError) as e:
                problem = f"the download failed: {_error_text(e)}"
                continue
            return RawObject(info.key, info.sha256, info.size, fetched_at), verifier, ""
        return None, None, problem

    def _orphan(self, entry: LedgerEntry, slice_: Slice) -> RawObject | None:
        """A document of this request already in the raw zone but not yet in the ledger.

        Objects appear under their key only once complete and verified, so one newer than the
        request that the ledger does not know is a download a crashed run finished but could not
        record: adopt it rather than fetch (and store) the same document twice.
        """
        if entry.requested_at is None:
            return None
        folder = raw_key(slice_, entry.requested_at, self.raw_prefix).rsplit("/", 1)[0] + "/"
        known = {r.key for r in entry.raw_objects}
        for info in self.store.list(folder):
            name = info.key.rsplit("/", 1)[-1]
            if info.key in known or not is_data_document(name):
                continue
            stamp = name.removesuffix(".gz").removesuffix(".json")
            fetched_at = datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ")
            fetched_at = fetched_at.replace(tzinfo=UTC)
            head = self.store.head(info.key)
            if fetched_at >= entry.requested_at and head is not None:
                return RawObject(head.key, head.sha256, head.size, fetched_at)
        return None

    async def _download(self, entry: LedgerEntry, slice_: Slice, url: str,
                        fresh_url: Callable[[], Awaitable[str]],
                        download: Callable[[str], AsyncIterator[bytes]],
                        document_id: str | None, *, compressed: bool) -> LedgerEntry:
        orphan = await asyncio.to_thread(self._orphan, entry, slice_)
        if orphan is not None:
            raw = RawObject(orphan.key, orphan.sha256, orphan.size, orphan.fetched_at, document_id)
            return self.update(entry, states.mark_downloaded(entry, raw, None, self.clock.now()))
        raw, verifier, problem = await self._store(
            slice_, url, fresh_url, download,
            lambda at: raw_key(slice_, at, self.raw_prefix, compressed=compressed), compressed)
        now = self.clock.now()
        if raw is None:
            # The report still exists: keep it live so the next run downloads it, not re-asks.
            return self.update(entry, states.mark_waited_out(
                entry, f"download failed {self.settings.download_attempts} times: {problem}", now))
        raw = RawObject(raw.key, raw.sha256, raw.size, raw.fetched_at, document_id)
        entry = self.update(entry, states.mark_downloaded(entry, raw, None, now))
        if slice_.source is Source.ADS and verifier is not None and verifier.uncompressed_size <= 2:
            # An Ads document is one JSON array: two bytes is `[]`, Amazon's "no rows".
            entry = self.update(entry, states.mark_empty(entry, now, "the document has no rows"))
        return entry

    async def _fatal(self, entry: LedgerEntry, slice_: Slice, url: str,
                     fresh_url: Callable[[], Awaitable[str]],
                     download: Callable[[str], AsyncIterator[bytes]],
                     document_id: str, *, compressed: bool) -> LedgerEntry:
        """Keep the FATAL report's error document and classify its errorDetails."""

        def key_for(at: datetime) -> str:
            return raw_key(slice_, at, self.raw_prefix, compressed=compressed, error=True)

        raw, _, problem = await self._store(slice_, url, fresh_url, download, key_for, compressed)
        details = None
        if raw is not None:
            details = await asyncio.to_thread(self._read_error_details, raw.key)
        text = details or (f"FATAL; the error document could not be read: {problem}"
                           if raw is None else "FATAL without errorDetails")
        changes = states.mark_failed(entry, classify_fatal(details), f"FATAL: {text}",
                                     self.clock.now())
        if raw is not None:
            changes["raw_objects"] = (*entry.raw_objects,
                                      RawObject(raw.key, raw.sha256, raw.size, raw.fetched_at,
                                                document_id))
        return self.update(entry, changes)

    def _read_error_details(self, key: str) -> str | None:


        with self.store.open_read(key) as f:
            # Error documents are small; cap what we read.
            body = (gzip.GzipFile(fileobj=f).read(1 << 20) if is_compressed(key)
                    else f.read(1 << 20))
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body[:500].decode("utf-8", "replace")
        return str(data.get("errorDetails")) if isinstance(data, dict) else None


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _lost_create_alike(mine: LedgerEntry, other: LedgerEntry, dated: bool) -> bool:
    """Whether `other` is another slice whose create may have been lost and whose report
    getReports would show the same as `mine`'s."""
    return (other.slice_key != mine.slice_key and other.note == CREATE_SENT
            and other.remote_report_id is None
            and (not dated or (other.start, other.end) == (mine.start, mine.end)))


def _vendor_times(slice_: Slice) -> tuple[date | datetime | None, date | datetime | None]:
    """The start and end to send: none for reports whose window lives in options."""
    rt = vendor_report_type(slice_.report_type)
    if rt is not None and rt.date_rule in (DateRule.NONE, DateRule.START_DATE_OPTIONS):
        return None, None
    return slice_.start, slice_.end


def _vendor_spec(slice_: Slice) -> VendorReportSpec:
    """The spec to send: coupon/promotion windows go into their reportOptions."""
    assert isinstance(slice_.spec, VendorReportSpec)
    rt = vendor_report_type(slice_.report_type)
    if rt is None or rt.date_rule is not DateRule.START_DATE_OPTIONS or rt.start_window is None:
        return slice_.spec
    options = slice_.spec.options_dict()
    options[rt.start_window.option_from] = f"{_as_date(slice_.start).isoformat()}T00:00:00Z"
    options[rt.start_window.option_to] = f"{_as_date(slice_.end).isoformat()}T23:59:59Z"
    return VendorReportSpec.of(slice_.report_type, options)


def resumable(ledger: Ledger) -> list[LedgerEntry]:
    """Entries a run picks up whatever was planned: planned, requested and processing slices."""
    return ledger.query(states=[SliceState.PLANNED, SliceState.REQUESTED, SliceState.PROCESSING])


def merge(planned: Sequence[LedgerEntry], live: Sequence[LedgerEntry]) -> list[LedgerEntry]:
    """`planned` and `live` without duplicates, in that order."""
    seen: set[str] = set()
    out = []
    for e in (*planned, *live):
        if e.slice_key not in seen:
            seen.add(e.slice_key)
            out.append(e)
    return out
