"""LakeWriter on a real SQLite Iceberg catalog: replace-by-footprint, evolution, memory, races."""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import assign_fresh_schema_ids
from pyiceberg.transforms import IdentityTransform, MonthTransform
from pyiceberg.types import DecimalType, LongType, StringType, TimestamptzType

from amzlake.lake import writer as writer_module
from amzlake.lake.catalog import open_catalog
from amzlake.lake.writer import LakeWriter
from amzlake.transform.model import LINEAGE_FIELDS, Footprint, TableRows
from tests.integration.lake_helpers import BIG_ID, T0, TABLE, batches_of, day, slice_rows


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return open_catalog(tmp_path / "lake")


@pytest.fixture
def writer(catalog: Catalog) -> LakeWriter:
    return LakeWriter(catalog)


def read(writer: LakeWriter, table: str = TABLE) -> pa.Table:
    sort = [(c, "ascending") for c in ("account_id", "identity_key", "report_date", "campaign_id")]
    return writer.table(table).scan().to_arrow().sort_by(sort)


def per_day(t: pa.Table, account: str = "1001") -> dict[Any, tuple[int, Decimal]]:
    """report_date -> (rows, sum of cost) for one account."""
    t = t.filter(pc.equal(t["account_id"], account))
    g = t.group_by("report_date").aggregate([("cost", "count"), ("cost", "sum")])
    return {d: (n, s) for d, n, s in zip(g["report_date"].to_pylist(), g["cost_count"].to_pylist(),
                                          g["cost_sum"].to_pylist(), strict=True)}


def data_files(writer: LakeWriter, table: str = TABLE) -> set[str]:
    return {t.file.file_path for t in writer.table(table).scan().plan_files()}


def test_first_use_creates_a_typed_partitioned_table(writer: LakeWriter) -> None:
    result = writer.replace(slice_rows([day(0), day(1)]))
    table = writer.table(TABLE)
    # One file for the (account, month) partition, not one per day.
    assert result.rows_added == 6 and result.rows_replaced == 0 and result.files_added == 1
    assert result.partitions == (day(0), day(1)) and result.snapshot_id is not None
    assert [f.name for f in table.spec().fields] == ["account_id", "report_date_month"]
    assert [type(f.transform) for f in table.spec().fields] == [IdentityTransform, MonthTransform]
    assert [table.schema().find_field(f.source_id).name for f in table.sort_order().fields] == [
        "report_date", "identity_key"]
    schema = table.schema()
    assert schema.find_field("campaign_id").field_type == LongType()
    assert schema.find_field("cost").field_type == DecimalType(18, 4)
    assert schema.find_field("fetched_at").field_type == TimestamptzType()
    assert schema.find_field("account_id").required and not schema.find_field("cost").required
    assert [f.name for f in schema.fields][:len(LINEAGE_FIELDS)] == [f.name for f in LINEAGE_FIELDS]
    rows = read(writer)
    assert rows["campaign_id"].to_pylist()[0] == BIG_ID  # above 2^53, intact
    assert rows["cost"].to_pylist()[0] == Decimal("1.2500")


def test_rerun_of_the_same_slice_gives_identical_contents(writer: LakeWriter) -> None:
    days = [day(0), day(1), day(2)]
    writer.replace(slice_rows(days))
    before = read(writer)
    again = writer.replace(slice_rows(days))
    assert again.rows_added == 9 and again.rows_replaced == 9
    assert again.files_removed == 1 and again.files_added == 1  # the partition's file, rewritten
    assert read(writer).equals(before)
    assert len(data_files(writer)) == 1


def test_restated_day_replaces_the_old_numbers(writer: LakeWriter) -> None:
    writer.replace(slice_rows([day(0), day(1), day(2)], cost="1.0000"))
    result = writer.replace(slice_rows([day(1)], T0 + timedelta(days=1), cost="5.0000"))
    assert result.rows_replaced == 3 and result.partitions == (day(1),)
    assert per_day(read(writer)) == {day(0): (3, Decimal("3.0000")),
                                     day(1): (3, Decimal("15.0000")),
                                     day(2): (3, Decimal("3.0000"))}


def test_overlapping_slices_never_double_count(writer: LakeWriter) -> None:
    writer.replace(slice_rows([day(0), day(1), day(2)]))
    writer.replace(slice_rows([day(1), day(2), day(3)], T0 + timedelta(hours=1)))
    assert {d: n for d, (n, _) in per_day(read(writer)).items()} == {
        day(0): 3, day(1): 3, day(2): 3, day(3): 3}


def test_older_fetch_after_newer_keeps_the_newer_days(writer: LakeWriter) -> None:
    writer.replace(slice_rows([day(1)], T0 + timedelta(days=2), cost="7.0000"))
    result = writer.replace(slice_rows([day(0), day(1), day(2)], T0, cost="1.0000"))
    assert result.days_skipped_as_older == (day(1),)
    assert result.rows_added == 6 and result.rows_replaced == 0
    assert per_day(read(writer)) == {day(0): (3, Decimal("3.0000")),
                                     day(1): (3, Decimal("21.0000")),
                                     day(2): (3, Decimal("3.0000"))}
    # The same older slice again (a rerun) still changes nothing on the newer day.
    writer.replace(slice_rows([day(0), day(1), day(2)], T0, cost="1.0000"))
    assert per_day(read(writer))[day(1)] == (3, Decimal("21.0000"))


def test_empty_restatement_removes_the_days_rows(writer: LakeWriter) -> None:
    writer.replace(slice_rows([day(0), day(1)]))
    empty = slice_rows([day(0), day(1)], T0 + timedelta(days=1), per_day=0,
                       footprint=(day(0), day(1)))
    result = writer.replace(empty)
    assert result.rows_added == 0 and result.rows_replaced == 6
    assert read(writer).num_rows == 0


def test_other_accounts_and_identities_are_untouched(writer: LakeWriter) -> None:
    days = [day(0), day(1), day(2)]
    writer.replace(slice_rows(days, account="1001", cost="1.0000"))
    writer.replace(slice_rows(days, account="2002", cost="2.0000"))
    writer.replace(slice_rows(days, account="1001", identity="ident-sp-filtered", cost="3.0000"))
    # An account's identities share its month's file; other accounts' files are not touched.
    assert len(data_files(writer)) == 2
    mine_prefix = "account_id=1001/"
    others_before = {p for p in data_files(writer) if mine_prefix not in p}
    writer.replace(slice_rows(days, T0 + timedelta(days=1), account="1001", cost="9.0000"))
    others_after = {p for p in data_files(writer) if mine_prefix not in p}
    assert others_after == others_before and len(data_files(writer)) == 2
    t = read(writer)
    assert per_day(t, "2002") == {d: (3, Decimal("6.0000")) for d in days}
    filtered = t.filter(pc.equal(t["identity_key"], "ident-sp-filtered"))
    assert pc.sum(filtered["cost"]).as_py() == Decimal("27.0000")
    mine = t.filter(pc.and_(pc.equal(t["account_id"], "1001"),
                            pc.equal(t["identity_key"], "ident-sp")))
    assert pc.sum(mine["cost"]).as_py() == Decimal("81.0000")


def test_a_slice_commit_rewrites_only_its_own_partitions(writer: LakeWriter) -> None:
    april = [day(31), day(32)]  # 2025-04-01, 2025-04-02
    writer.replace(slice_rows([day(0), day(1), day(2), *april]))
    writer.replace(slice_rows([day(0), day(1)], account="2002"))
    before = data_files(writer)
    assert len(before) == 3  # (1001, March), (1001, April), (2002, March)
    result = writer.replace(slice_rows([day(1)], T0 + timedelta(days=1)))
    after = data_files(writer)
    assert result.files_removed == 1 and result.files_added == 1
    kept = before & after
    assert len(kept) == 2 and all("account_id=1001/report_date_month=2025-03" not in p
                                  for p in kept)
    (gone,) = before - after
    (new,) = after - before
    assert "account_id=1001/report_date_month=2025-03/" in gone
    assert "account_id=1001/report_date_month=2025-03/" in new
    # The snapshot's summary says what the overwrite did, in one snapshot: the month's file
    # (9 rows) went, its rewrite with the restated day (9 rows) came.
    summary = writer.table(TABLE).current_snapshot().summary
    assert summary["deleted-records"] == "9" and summary["added-records"] == "9"


def test_new_fields_become_nullable_columns(writer: LakeWriter) -> None:
    writer.replace(slice_rows([day(0)]))
    ids_before = {f.name: f.field_id for f in writer.table(TABLE).schema().fields}
    result = writer.replace(slice_rows([day(1)], extra={"new_metric": (pa.int64(), 42),
                                                        "new_label": (pa.string(), "x")}))
    assert result.columns_added == ("new_metric", "new_label")
    schema = writer.table(TABLE).schema()
    assert {f.name: f.field_id for f in schema.fields if f.name in ids_before} == ids_before
    assert not schema.find_field("new_metric").required
    assert schema.find_field("new_label").field_type == StringType()
    t = read(writer)
    by_day = dict(zip(t["report_date"].to_pylist(), t["new_metric"].to_pylist(), strict=True))
    assert by_day == {day(0): None, day(1): 42}


def test_schema_growing_mid_slice_lands_every_row(writer: LakeWriter) -> None:
    plain = slice_rows([day(0), day(1)])
    grown = slice_rows([day(0), day(1)], extra={"late_field": (pa.float64(), 1.5)})

    def batches() -> Iterator[pa.RecordBatch]:
        yield from plain.batches
        yield from grown.batches

    rows = TableRows(TABLE, plain.schema, batches(), plain.footprint)
    result = writer.replace(rows)
    assert result.rows_added == 12 and rows.rows == 12 and "late_field" in result.columns_added
    t = read(writer)
    assert t.num_rows == 12 and pc.count(t["late_field"]).as_py() == 6


def test_rows_outside_the_accounts_footprint_are_refused(writer: LakeWriter) -> None:
    bad = slice_rows([day(0)], account="1001")
    rows = TableRows(TABLE, bad.schema, bad.batches,
                     Footprint("9999", "ident-sp", day(0), day(0), T0))
    with pytest.raises(Exception, match="another account_id"):
        writer.replace(rows)
    assert writer.table(TABLE).scan().to_arrow().num_rows == 0


def test_table_partitioned_otherwise_is_still_replaced_exactly(catalog: Catalog) -> None:
    # A table another tool made, partitioned by report_date only: files hold several accounts.
    schema = assign_fresh_schema_ids(Catalog._convert_schema_if_needed(slice_rows([day(0)]).schema))
    catalog.create_namespace("amzlake")
    catalog.create_table(("amzlake", TABLE), schema=schema, partition_spec=PartitionSpec(
        PartitionField(source_id=schema.find_field("report_date").field_id, field_id=1000,
                       transform=IdentityTransform(), name="report_date")))
    writer = LakeWriter(catalog)
    writer.replace(slice_rows([day(0), day(1)], account="1001", cost="1.0000"))
    writer.replace(slice_rows([day(0), day(1)], account="2002", cost="2.0000"))
    writer.replace(slice_rows([day(0), day(1)], T0 + timedelta(days=1), account="1001",
                              cost="4.0000"))
    t = read(writer)
    assert per_day(t, "1001") == {day(0): (3, Decimal("12.0000")), day(1): (3, Decimal("12.0000"))}
    assert per_day(t, "2002") == {day(0): (3, Decimal("6.0000")), day(1): (3, Decimal("6.0000"))}


# ---- Concurrency ---------------------------------------------------------------------------------


def test_a_conflicting_commit_is_retried_and_decided_again(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Writer A reads the table, B commits a newer fetch of A's days, then A commits: A's commit
    fails, A reloads, sees B's newer day and keeps it (no lost commit, no stale overwrite)."""
    lake = tmp_path / "lake"
    a, b = LakeWriter(open_catalog(lake)), LakeWriter(open_catalog(lake))
    a.replace(slice_rows([day(9)], account="1001"))  # the table exists
    original = writer_module.table_state
    calls = {"n": 0}

    def interleaved(*args: Any, **kwargs: Any) -> Any:
        state = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:  # between A's read and A's commit
            b.replace(slice_rows([day(1)], T0 + timedelta(days=3), cost="8.0000"))
        return state

    monkeypatch.setattr(writer_module, "table_state", interleaved)
    result = a.replace(slice_rows([day(0), day(1), day(2)], T0, cost="1.0000"))
    assert result.attempts == 2 and result.days_skipped_as_older == (day(1),)
    assert per_day(read(a)) == {day(0): (3, Decimal("3.0000")), day(1): (3, Decimal("24.0000")),
                                day(2): (3, Decimal("3.0000")), day(9): (3, Decimal("3.7500"))}


def test_two_writers_in_threads_both_land_every_commit(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    LakeWriter(open_catalog(lake)).replace(slice_rows([day(30)], account="0000"))
    errors: list[BaseException] = []
    attempts: list[int] = []
    barrier = threading.Barrier(2)

    def work(account: str) -> None:
        w = LakeWriter(open_catalog(lake))
        try:
            barrier.wait()
            for i in range(6):
                attempts.append(w.replace(slice_rows([day(i), day(i + 1)], account=account,
                                                     cost="1.0000")).attempts)
        except BaseException as e:  # reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(acct,)) for acct in ("1001", "2002")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    t = read(LakeWriter(open_catalog(lake)))
    for acct in ("1001", "2002"):
        assert per_day(t, acct) == {day(i): (3, Decimal("3.0000")) for i in range(7)}
    assert len(attempts) == 12


# ---- A 1,000,000-row slice with bounded memory ---------------------------------------------------

MILLION = 1_000_000
BATCH = 65_536
METRICS = 20


def _million_rows() -> TableRows:
    schema = pa.schema([*LINEAGE_FIELDS, pa.field("campaign_id", pa.int64()),
                        pa.field("cost", pa.decimal128(18, 4)),
                        *(pa.field(f"metric_{i}", pa.int64()) for i in range(METRICS))])

    def batches() -> Iterator[pa.RecordBatch]:
        rng = np.random.default_rng(7)
        for start in range(0, MILLION, BATCH):
            n = min(BATCH, MILLION - start)
            idx = np.arange(start, start + n)
            days = pa.array((np.datetime64(day(0)) + (idx % 31)).astype("datetime64[D]"))
            cols = [
                days, pa.array(["1001"] * n), pa.array(["ident-sp"] * n), pa.array(["s"] * n),
                pa.array(["r"] * n), pa.array(["raw/k"] * n),
                pa.array(np.full(n, np.datetime64(T0.replace(tzinfo=None), "us")),
                         pa.timestamp("us", tz="UTC")),
                pa.array(BIG_ID + idx, pa.int64()),
                pa.array(idx % 1000, pa.int32()).cast(pa.decimal128(18, 4)),
                *(pa.array(rng.integers(0, 10**6, n)) for _ in range(METRICS)),
            ]
            yield pa.RecordBatch.from_arrays(cols, schema=schema)

    return TableRows(TABLE, schema, batches(),
                     Footprint("1001", "ident-sp", day(0), day(30), T0))


def _write_million(lake: str, out: Any) -> None:
    import resource

    rows = _million_rows()
    result = LakeWriter(open_catalog(Path(lake))).replace(rows)
    out.put({"rows": result.rows_added, "files": result.files_added,
             "arrow_peak": pa.default_memory_pool().max_memory(),
             "rss_peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss})


def test_a_million_row_slice_is_committed_with_bounded_memory(tmp_path: Path) -> None:
    # In a child process, so its peak memory is its own.
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=_write_million, args=(str(tmp_path / "lake"), out))
    child.start()
    report = None
    while report is None and (child.is_alive() or not out.empty()):
        with contextlib.suppress(queue.Empty):
            report = out.get(timeout=1)
    child.join(timeout=60)
    assert report is not None, "the writer process died (its traceback is above)"
    assert child.exitcode == 0
    # One month, one slice: its staged file becomes the partition's file as it is.
    assert report["rows"] == MILLION and report["files"] == 1
    # The slice is ~230 MB as Arrow columns; the writer holds a bounded part of it at a time.
    total = MILLION * (8 * (METRICS + 2) + 16 + 4 + 8 + 5 * 4 + 30)
    assert total > 200 * 2**20
    # The bound that matters: Arrow memory held at once, a fraction of the slice.
    assert report["arrow_peak"] < 100 * 2**20, report
    # The process as a whole (interpreter, pyiceberg, the test's own row generator, allocator
    # arenas that grow when the machine is loaded) only gets a loose guard against gross growth.
    assert report["rss_peak_kb"] < 800 * 1024, report
    t = LakeWriter(open_catalog(tmp_path / "lake")).table(TABLE)
    counted = t.scan(selected_fields=("campaign_id",)).to_arrow()
    assert counted.num_rows == MILLION
    assert pc.max(counted["campaign_id"]).as_py() == BIG_ID + MILLION - 1


def test_batches_are_streamed_not_collected(writer: LakeWriter) -> None:
    # Small batches of many days: every row lands, in one file of the month, row counts reported.
    base = slice_rows([day(i) for i in range(10)], per_day=50)
    rows = TableRows(TABLE, base.schema, batches_of(base, 7), base.footprint)
    result = writer.replace(rows)
    assert result.rows_added == 500 and result.files_added == 1 and rows.rows == 500
