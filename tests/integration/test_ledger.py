"""The ledger on SQLite and DynamoDB (moto server): planning, compare-and-set, leases, two
processes at once, queries, persistence."""

from __future__ import annotations

import dataclasses
import multiprocessing
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from amzlake.errors import ConfigError, StaleEntry, StorageError
from amzlake.ingest import states
from amzlake.ingest.states import FailureClass, SliceState
from amzlake.slices import Account, AdsReportSpec, Slice, Source, VendorReportSpec
from amzlake.storage.ledger import Ledger, RawObject, open_ledger

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
ADS = Account(Source.ADS, "3141592653589793", "NA", "ATVPDKIKX0DER", "US", "USD",
              "America/Los_Angeles")
VENDOR = Account(Source.VENDOR, "A1VENDOR", "NA", "ATVPDKIKX0DER", "US", "USD",
                 "America/Los_Angeles")
SP = AdsReportSpec("spCampaigns", "SPONSORED_PRODUCTS", ("campaign",),
                   ("date", "campaignId", "impressions", "cost"))
SALES = VendorReportSpec.of("GET_VENDOR_SALES_REPORT",
                            {"reportPeriod": "DAY", "distributorView": "MANUFACTURING"})
REALTIME = VendorReportSpec.of("GET_VENDOR_REAL_TIME_SALES_REPORT")


def days(account: Account, spec: AdsReportSpec | VendorReportSpec, first: date,
         n: int) -> list[Slice]:
    """One slice per day for `n` days from `first`."""
    return [Slice(account, spec, first + timedelta(d), first + timedelta(d)) for d in range(n)]


@pytest.fixture(params=["sqlite", "dynamodb"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> str:
    """Where a fresh ledger of each backend lives (DynamoDB: a new table on the moto server)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state/ledger.db"
    request.getfixturevalue("aws_env")
    # boto3 reads the endpoint from the environment, which child processes inherit too.
    monkeypatch.setenv("AWS_ENDPOINT_URL", request.getfixturevalue("moto_server"))
    return f"dynamodb://ledger-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    """A fresh, open ledger; closed after the test."""
    led = open_ledger(ledger_url)
    yield led
    led.close()


def test_plan_inserts_new_slices_once_and_leaves_existing_ones_alone(ledger: Ledger) -> None:
    slices = days(ADS, SP, date(2026, 11, 1), 5)
    first = ledger.plan(slices, NOW)
    assert [e.slice_key for e in first] == [s.key for s in slices]
    assert {e.state for e in first} == {SliceState.PLANNED}
    assert all(e.version == 1 and e.attempts == 0 and e.created_at == NOW for e in first)
    assert first[0].spec == SP.normalised() and first[0].report_date == date(2026, 11, 1)
    moved = ledger.update(first[2], states.mark_requested(first[2], "rpt-2", NOW))
    later = NOW + timedelta(hours=1)
    again = ledger.plan([*slices, *days(ADS, SP, date(2026, 11, 6), 1), slices[0]], later)
    assert len(again) == 7 and again[-1] == again[0]
    assert again[2] == moved  # untouched: still requested, same version
    assert again[:2] == first[:2] and again[3:5] == first[3:5]
    assert again[5].created_at == later
    assert len(ledger.query()) == 6


def test_compare_and_set_lets_exactly_one_of_two_updates_win(ledger: Ledger) -> None:
    [entry] = ledger.plan(days(VENDOR, SALES, date(2026, 11, 1), 1), NOW)
    winner = ledger.update(entry, states.mark_requested(entry, "rpt-1", NOW))
    assert winner.version == entry.version + 1 and winner.state is SliceState.REQUESTED
    with pytest.raises(StaleEntry, match=f"slice {entry.slice_key}: changed by someone else"):
        ledger.update(entry, states.mark_cancelled(entry, NOW))
    assert ledger.get(entry.slice_key) == winner
    # The same race from eight threads at once.
    current = ledger.get(entry.slice_key)
    assert current is not None
    barrier, wins, stale = threading.Barrier(8), [], []

    def racer(n: int) -> None:
        barrier.wait()
        try:
            wins.append(ledger.update(current, {"note": f"thread {n}"}))
        except StaleEntry:
            stale.append(n)

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(stale) == 7
    assert ledger.get(entry.slice_key) == wins[0]


def test_every_field_round_trips_and_survives_reopening(ledger_url: str) -> None:
    hourly = Slice(VENDOR, REALTIME, datetime(2026, 11, 20, 3, tzinfo=UTC),
                   datetime(2026, 11, 20, 3, 59, 59, tzinfo=UTC))
    led = open_ledger(ledger_url)
    [e] = led.plan([hourly], NOW)
    assert e.start == hourly.start and e.end == hourly.end and e.report_date == date(2026, 11, 20)
    e = led.update(e, states.mark_requested(e, "98765", NOW))
    raw = RawObject("raw/vendor/x/2026-11-20/A1VENDOR/k/20261120T150500000000Z.json.gz",
                    "0f" * 32, 4096, NOW + timedelta(minutes=5), "amzn1.tortuga.doc")
    e = led.update(e, states.mark_downloaded(e, raw, 17, NOW + timedelta(minutes=5)))
    e = led.update(e, states.mark_failed(e, FailureClass.RETRYABLE, "HTTP 503 on download",
                                         NOW + timedelta(minutes=6), NOW + timedelta(minutes=30)))
    led.close()
    with open_ledger(ledger_url) as again:  # type: ignore[attr-defined]
        back = again.get(e.slice_key)
    assert back == e
    assert back is not None and back.raw_objects == (raw,) and back.row_count == 17
    assert back.failure_class is FailureClass.RETRYABLE
    assert back.next_attempt_at == NOW + timedelta(minutes=30)


def test_leases_keep_a_second_owner_out_until_they_expire(ledger: Ledger) -> None:
    [e] = ledger.plan(days(ADS, SP, date(2026, 11, 1), 1), NOW)
    lease = timedelta(minutes=10)
    held = ledger.acquire(e.slice_key, "run-a", NOW, lease)
    assert held is not None
    assert (held.lease_owner, held.lease_until) == ("run-a", NOW + lease)
    assert ledger.acquire(e.slice_key, "run-b", NOW + timedelta(minutes=9), lease) is None
    renewed = ledger.acquire(e.slice_key, "run-a", NOW + timedelta(minutes=9), lease)
    assert renewed is not None and renewed.lease_until == NOW + timedelta(minutes=19)
    assert ledger.acquire(e.slice_key, "run-b", NOW + timedelta(minutes=18), lease) is None
    taken = ledger.acquire(e.slice_key, "run-b", NOW + timedelta(minutes=19), lease)
    assert taken is not None and taken.lease_owner == "run-b"
    # run-a, unaware, tries to carry on with the entry it held: refused; nor can it extend.
    with pytest.raises(StaleEntry):
        ledger.update(renewed, states.mark_requested(renewed, "rpt-a", NOW))
    assert not ledger.extend(e.slice_key, "run-a", NOW + timedelta(minutes=19), lease)
    assert ledger.release(e.slice_key, "run-a") is None
    released = ledger.release(e.slice_key, "run-b")
    assert released is not None and released.lease_owner is None and released.lease_until is None
    again = ledger.acquire(e.slice_key, "run-c", NOW + timedelta(minutes=20), lease)
    assert again is not None and again.lease_owner == "run-c"
    with pytest.raises(StorageError, match="no slice nope"):
        ledger.acquire("nope", "run-a", NOW, lease)


def test_extending_a_lease_keeps_the_holders_entry_current(ledger: Ledger) -> None:
    # A create can wait for its rate-limit token longer than a lease: the runner extends the
    # lease meanwhile and must still be able to record the answer with the entry it holds.
    [e] = ledger.plan(days(ADS, SP, date(2026, 11, 1), 1), NOW)
    lease = timedelta(minutes=10)
    held = ledger.acquire(e.slice_key, "run-a", NOW, lease)
    assert held is not None
    for minutes in (8, 16, 24):
        assert ledger.extend(e.slice_key, "run-a", NOW + timedelta(minutes=minutes), lease)
        assert ledger.acquire(e.slice_key, "run-b", NOW + timedelta(minutes=minutes + 9),
                              lease) is None
    current = ledger.get(e.slice_key)
    assert current is not None and current.version == held.version
    assert current.lease_until == NOW + timedelta(minutes=34)
    done = ledger.update(held, states.mark_requested(held, "rpt-a", NOW + timedelta(minutes=30)))
    assert done.remote_report_id == "rpt-a"


def _work_keys(url: str, owner: str, keys: list[str], barrier: object) -> list[str]:
    """Child process: lease every key it can, mark each leased one requested; the keys it got."""
    led = open_ledger(url)
    barrier.wait()  # type: ignore[attr-defined]
    got = []
    for key in keys:
        entry = led.acquire(key, owner, NOW, timedelta(hours=1))
        if entry is None:
            continue
        led.update(entry, states.mark_requested(entry, f"{owner}:{key}", NOW))
        got.append(key)
    led.close()
    return got


def test_two_processes_never_lease_the_same_slice(ledger: Ledger, ledger_url: str) -> None:
    keys = [e.slice_key for e in ledger.plan(days(ADS, SP, date(2026, 9, 1), 50), NOW)]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Manager().Barrier(2)
    with ctx.Pool(2) as pool:
        # One walks the keys forwards, the other backwards, so they meet in the middle.
        a = pool.apply_async(_work_keys, (ledger_url, "proc-a", keys, barrier))
        b = pool.apply_async(_work_keys, (ledger_url, "proc-b", keys[::-1], barrier))
        got_a, got_b = a.get(120), b.get(120)
    assert not set(got_a) & set(got_b)
    assert sorted(got_a + got_b) == sorted(keys)
    for e in ledger.query():
        owner = "proc-a" if e.slice_key in got_a else "proc-b"
        assert (e.state, e.attempts, e.lease_owner) == (SliceState.REQUESTED, 1, owner)
        assert e.remote_report_id == f"{owner}:{e.slice_key}"


def test_query_filters_and_orders(ledger: Ledger) -> None:
    ads = ledger.plan(days(ADS, SP, date(2026, 11, 1), 3), NOW)
    vendor = ledger.plan(days(VENDOR, SALES, date(2026, 10, 31), 3), NOW)
    ledger.update(ads[1], states.mark_requested(ads[1], "r", NOW))
    assert [e.report_date for e in ledger.query()] == sorted(
        e.report_date for e in ads + vendor)
    assert [e.slice_key for e in ledger.query(states=[SliceState.REQUESTED])] == [ads[1].slice_key]
    assert ledger.query(states=[]) == []
    assert {e.slice_key for e in ledger.query(source="vendor")} == {e.slice_key for e in vendor}
    assert len(ledger.query(account_id=ADS.account_id, report_type="spCampaigns")) == 3
    assert len(ledger.query(report_type="GET_VENDOR_SALES_REPORT",
                            since=date(2026, 11, 1))) == 2
    assert len(ledger.query(states=["planned"], source="ads", since=date(2026, 11, 2))) == 1


def test_summary_tells_status_what_is_complete_pending_and_failed(ledger: Ledger) -> None:
    e = ledger.plan(days(ADS, SP, date(2026, 11, 1), 6), NOW)
    ledger.plan(days(VENDOR, SALES, date(2026, 11, 1), 1), NOW)

    def move(i: int, *steps: str) -> None:
        cur = ledger.get(e[i].slice_key)
        assert cur is not None
        for step in steps:
            if step == "requested":
                ch = states.mark_requested(cur, f"r{i}", NOW)
            elif step == "downloaded":
                ch = states.mark_downloaded(cur, RawObject(f"k{i}", "0" * 64, 1, NOW), 3, NOW)
            elif step == "curated":
                ch = states.mark_curated(cur, 3, NOW)
            elif step == "empty":
                ch = states.mark_empty(cur, NOW)
            else:
                ch = states.mark_failed(cur, FailureClass.FATAL_INPUT, step, NOW)
            cur = ledger.update(cur, ch)

    move(0, "requested", "downloaded", "curated")
    move(1, "requested", "empty")
    move(2, "requested", "FATAL: startDate is after endDate")
    move(3, "requested")
    move(4, "requested", "downloaded")
    [ads, vendor] = ledger.summary()
    assert (ads.source, ads.account_id, ads.report_type) == ("ads", ADS.account_id, "spCampaigns")
    assert ads.counts == {"curated": 1, "empty": 1, "failed": 1, "requested": 1,
                          "downloaded": 1, "planned": 1}
    assert ads.last_complete_day == date(2026, 11, 5)
    assert ads.complete_through == date(2026, 11, 2)  # the 3rd failed
    assert ads.pending == 2
    assert [(f.report_date, f.failure_class, f.error) for f in ads.failures] == [
        (date(2026, 11, 3), FailureClass.FATAL_INPUT, "FATAL: startDate is after endDate")]
    assert vendor.report_type == "GET_VENDOR_SALES_REPORT" and vendor.pending == 1
    assert vendor.last_complete_day is None and vendor.complete_through is None


def test_updates_are_checked(ledger: Ledger) -> None:
    [e] = ledger.plan(days(ADS, SP, date(2026, 11, 1), 1), NOW)
    with pytest.raises(ValueError, match=r"cannot update \['report_date'\]"):
        ledger.update(e, {"report_date": date(2026, 1, 1)})
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.update(e, {"requested_at": datetime(2026, 11, 20)})
    with pytest.raises(ValueError):
        ledger.update(e, {"state": "finished"})
    ghost = dataclasses.replace(e, slice_key="ghost")
    with pytest.raises(StorageError, match="no slice ghost"):
        ledger.update(ghost, {"note": "x"})
    assert ledger.get(e.slice_key) == e


def test_open_ledger_picks_backends_and_names_the_file_in_errors(tmp_path: Path) -> None:
    plain = open_ledger(tmp_path / "a.db")
    plain.close()
    assert (tmp_path / "a.db").exists()
    with pytest.raises(ConfigError, match="dynamodb:// needs a table name"):
        open_ledger("dynamodb://")
    with pytest.raises(ConfigError, match="unknown scheme 'postgres'"):
        open_ledger("postgres://db/ledger")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database, just text " * 100)
    with pytest.raises(StorageError, match=f"ledger {junk}"):
        open_ledger(junk)
    future = tmp_path / "future.db"
    db = sqlite3.connect(future)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    db.commit()
    db.close()
    with pytest.raises(StorageError, match=f"ledger {future}: schema version 99 is newer"):
        open_ledger(future)
