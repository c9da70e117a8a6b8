"""The lake's layout at scale: many slices per commit, field ids, migration, file splits."""

from __future__ import annotations

import itertools
import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyiceberg.catalog import Catalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import assign_fresh_schema_ids
from pyiceberg.table import TableProperties
from pyiceberg.transforms import IdentityTransform

from amzlake.lake import merge as merge_module
from amzlake.lake.catalog import open_catalog
from amzlake.lake.layout import FIELD_ID_KEY, month_of
from amzlake.lake.maintenance import MaintenancePolicy, maintain_table
from amzlake.lake.writer import LakeWriter
from tests.integration.lake_helpers import T0, TABLE, day, slice_rows

DAYS = 70  # across three calendar months


def scan(writer: LakeWriter, table: str = TABLE) -> pa.Table:
    sort = [(c, "ascending") for c in ("account_id", "identity_key", "report_date", "campaign_id")]
    return writer.table(table).scan().to_arrow().sort_by(sort)


def live_paths(writer: LakeWriter, table: str = TABLE) -> list[str]:
    return [t.file.file_path for t in writer.table(table).scan().plan_files()]


def totals(t: pa.Table) -> dict[tuple[str, str, date], tuple[int, Decimal]]:
    """(account, identity, day) -> (rows, sum of cost)."""
    g = t.group_by(["account_id", "identity_key", "report_date"]).aggregate(
        [("cost", "count"), ("cost", "sum")])
    return {(a, i, d): (n, s) for a, i, d, n, s in zip(
        g["account_id"].to_pylist(), g["identity_key"].to_pylist(), g["report_date"].to_pylist(),
        g["cost_count"].to_pylist(), g["cost_sum"].to_pylist(), strict=True)}


# ---- Many slices in one commit -------------------------------------------------------------------


@pytest.fixture(params=["in memory", "streamed by day"])
def merge_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a merge reads its inputs: whole (small partitions) and day by day (large)."""
    if request.param == "streamed by day":
        monkeypatch.setattr(merge_module, "IN_MEMORY_BYTES", 0)
    return str(request.param)


def test_a_run_of_slices_is_one_commit_and_equals_committing_them_one_by_one(
        tmp_path: Path, merge_path: str) -> None:
    slices = [
        dict(days=[day(i) for i in range(31)], fetched_at=T0, cost="1.0000"),  # a backfill month
        dict(days=[day(3)], fetched_at=T0 + timedelta(days=5), cost="5.0000"),  # restatements
        dict(days=[day(20)], fetched_at=T0 + timedelta(days=7), cost="7.0000"),
        dict(days=[day(3)], fetched_at=T0 + timedelta(days=2), cost="2.0000"),  # older: loses
        dict(days=[day(i) for i in range(5)], fetched_at=T0, cost="1.0000", account="2002"),
    ]
    one_by_one = LakeWriter(open_catalog(tmp_path / "a"))
    for s in slices:
        one_by_one.replace(slice_rows(**s))
    together = LakeWriter(open_catalog(tmp_path / "b"))
    staged = [together.stage(slice_rows(**s), f"slice-{i}") for i, s in enumerate(slices)]
    results = together.commit(TABLE, staged)

    assert totals(scan(together)) == totals(scan(one_by_one))
    assert totals(scan(together))[("1001", "ident-sp", day(3))] == (3, Decimal("15.0000"))
    table = together.table(TABLE)
    assert len(table.metadata.snapshots) == 1  # one atomic commit for the whole run
    assert len({r.snapshot_id for r in results}) == 1
    assert results[3].days_skipped_as_older == (day(3),) and results[3].rows_added == 0
    assert results[0].days_skipped_as_older == (day(3), day(20))
    # One file per (account, month): 1001 March, 2002 March.
    assert len(live_paths(together)) == 2


@st.composite
def histories(draw: st.DrawFn) -> list[dict]:
    """Fetches of one report: (account, days, fetch time) in any order, some empty."""
    out = []
    for _ in range(draw(st.integers(1, 8))):
        first = draw(st.integers(0, DAYS - 1))
        width = draw(st.sampled_from([1, 1, 1, 3, 31]))
        days = [day(d) for d in range(first, min(DAYS, first + width))]
        out.append(dict(days=days, fetched_at=T0 + timedelta(hours=draw(st.integers(0, 500))),
                        account=draw(st.sampled_from(["1001", "2002"])),
                        cost=f"{draw(st.integers(1, 9))}.0000",
                        per_day=draw(st.sampled_from([0, 1, 3])),
                        footprint=(days[0], days[-1])))
    return out


def _model(history: list[dict]) -> dict[tuple[str, str, date], tuple[int, Decimal]]:
    """Newest fetch per (account, day) wins; a fetch with no rows clears its days."""
    best: dict[tuple[str, date], dict] = {}
    for h in history:
        for d in h["days"]:
            key = (h["account"], d)
            if key not in best or h["fetched_at"] >= best[key]["fetched_at"]:
                best[key] = h
    return {(a, "ident-sp", d): (h["per_day"], Decimal(h["cost"]) * h["per_day"])
            for (a, d), h in best.items() if h["per_day"]}


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=histories(), cut=st.integers(0, 8), seed=st.integers(0, 1000))
def test_any_grouping_of_commits_gives_the_newest_fetch_per_day(
        tmp_path_factory: pytest.TempPathFactory, history: list[dict], cut: int, seed: int) -> None:
    """Slices in any order within a commit; commits in the order the documents arrived (as the
    transform takes them). An empty answer leaves no row behind to say when it was fetched, so
    the writer can only clear what is older than it in the table or in the same commit: an
    older document committed after a newer empty one would come back (amzlake.lake.decide)."""
    seen: set[tuple[str, datetime]] = set()
    history = [h for h in history if (h["account"], h["fetched_at"]) not in seen
               and not seen.add((h["account"], h["fetched_at"]))]  # type: ignore[func-returns-value]
    history.sort(key=lambda h: h["fetched_at"])
    writer = LakeWriter(open_catalog(tmp_path_factory.mktemp("lake")))
    for group in (history[:cut], history[cut:]):
        random.Random(seed).shuffle(group)
        if group:
            staged = [writer.stage(slice_rows(**h), f"s{i}") for i, h in enumerate(group)]
            writer.commit(TABLE, staged)
    got = totals(scan(writer)) if writer.exists(TABLE) else {}
    assert got == _model(history)
    # Never a file per slice: at most one file per (account, month) partition.
    if writer.exists(TABLE):
        parts = [p.split("/data/")[1].rsplit("/", 1)[0] for p in live_paths(writer)]
        assert len(parts) == len(set(parts))


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(history=histories(), cut=st.integers(0, 8), seed=st.integers(0, 1000))
def test_documents_with_rows_give_the_newest_fetch_whatever_the_commit_order(
        tmp_path_factory: pytest.TempPathFactory, history: list[dict], cut: int, seed: int) -> None:
    history = [{**h, "per_day": h["per_day"] or 1} for h in history]
    seen: set[tuple[str, datetime]] = set()
    history = [h for h in history if (h["account"], h["fetched_at"]) not in seen
               and not seen.add((h["account"], h["fetched_at"]))]  # type: ignore[func-returns-value]
    random.Random(seed).shuffle(history)
    writer = LakeWriter(open_catalog(tmp_path_factory.mktemp("lake")))
    for group in (history[:cut], history[cut:]):
        if group:
            writer.commit(TABLE, [writer.stage(slice_rows(**h), f"s{i}")
                                  for i, h in enumerate(group)])
    assert totals(scan(writer)) == _model(history)


# ---- Field ids ------------------------------------------------------------------------------------


def test_every_file_carries_the_tables_field_ids(tmp_path: Path) -> None:
    writer = LakeWriter(open_catalog(tmp_path / "lake"))
    writer.replace(slice_rows([day(0), day(1)]))
    writer.replace(slice_rows([day(40)], extra={"new_metric": (pa.int64(), 42)}))  # evolution
    writer.replace(slice_rows([day(1)], T0 + timedelta(days=1), cost="3.0000"))  # a merge
    table = writer.table(TABLE)
    ids = {f.name: f.field_id for f in table.schema().fields}
    for path in live_paths(writer):
        schema = pq.read_schema(path.removeprefix("file://"))
        found = {f.name: int(f.metadata[FIELD_ID_KEY]) for f in schema}
        assert found == {n: ids[n] for n in schema.names}, path


def test_an_engine_reading_by_field_id_alone_gets_every_value(tmp_path: Path) -> None:
    writer = LakeWriter(open_catalog(tmp_path / "lake"))
    writer.replace(slice_rows([day(0), day(1)], cost="2.0000"))
    writer.replace(slice_rows([day(40)], extra={"new_metric": (pa.int64(), 42)}))
    expected = scan(writer)
    # Without the name mapping a reader can only match columns by the files' field ids.
    table = writer.table(TABLE)
    table = table.transaction().remove_properties(
        TableProperties.DEFAULT_NAME_MAPPING).commit_transaction()
    assert TableProperties.DEFAULT_NAME_MAPPING not in table.properties
    by_id = table.scan().to_arrow().sort_by(
        [(c, "ascending") for c in ("account_id", "identity_key", "report_date", "campaign_id")])
    assert by_id.num_rows == 9
    assert pc.sum(by_id["cost"]).as_py() == pc.sum(expected["cost"]).as_py()
    assert by_id["new_metric"].to_pylist() == expected["new_metric"].to_pylist()
    assert by_id["campaign_id"].null_count == 0 and by_id["fetched_at"].null_count == 0


# ---- Tables of the earlier layout -----------------------------------------------------------------


def _legacy_table(catalog: Catalog) -> None:
    """A table as amzlake 0.1 made it: one partition per day, account and identity."""
    schema = assign_fresh_schema_ids(Catalog._convert_schema_if_needed(
        slice_rows([day(0)]).schema))
    catalog.create_namespace("amzlake")
    fields = [PartitionField(source_id=schema.find_field(n).field_id, field_id=1000 + i,
                             transform=IdentityTransform(), name=n)
              for i, n in enumerate(("report_date", "account_id", "identity_key"))]
    table = catalog.create_table(("amzlake", TABLE), schema=schema,
                                 partition_spec=PartitionSpec(*fields))
    for account in ("1001", "2002"):
        rows = slice_rows([day(i) for i in range(40)], account=account, cost="1.0000")
        table.append(pa.Table.from_batches(list(rows.batches)))


def test_a_table_of_the_earlier_layout_keeps_working_and_maintenance_migrates_it(
        tmp_path: Path, merge_path: str) -> None:
    catalog = open_catalog(tmp_path / "lake")
    _legacy_table(catalog)
    legacy_files = len(list(catalog.load_table(("amzlake", TABLE)).scan().plan_files()))
    assert legacy_files == 80  # a file per day and account
    writer = LakeWriter(catalog)
    # A restated day on the old files: replaced exactly, the rest untouched.
    writer.replace(slice_rows([day(5)], T0 + timedelta(days=9), cost="4.0000"))
    t = totals(scan(writer))
    assert t[("1001", "ident-sp", day(5))] == (3, Decimal("12.0000"))
    assert t[("1001", "ident-sp", day(6))] == (3, Decimal("3.0000"))
    assert sum(n for n, _ in t.values()) == 240
    before = totals(scan(writer))

    report = maintain_table(catalog, "amzlake", TABLE, MaintenancePolicy(),
                            now=T0 + timedelta(days=10))
    assert report.partitions_compacted == 4  # (1001, 2002) x (March, April)
    table = writer.table(TABLE)
    assert totals(scan(writer)) == before
    files = [t.file for t in table.scan().plan_files()]
    assert len(files) == 4 and all(f.spec_id == table.spec().spec_id for f in files)
    # ... and the migrated table goes on taking restatements.
    writer.replace(slice_rows([day(6)], T0 + timedelta(days=11), cost="2.0000"))
    assert totals(scan(writer))[("1001", "ident-sp", day(6))] == (3, Decimal("6.0000"))
    assert len(live_paths(writer)) == 4


# ---- Big partitions -------------------------------------------------------------------------------


def test_a_partition_past_the_target_size_splits_at_days_and_a_restatement_rewrites_one_file(
        tmp_path: Path, merge_path: str) -> None:
    writer = LakeWriter(open_catalog(tmp_path / "lake"), row_group_rows=200)
    writer.replace(slice_rows([day(0)], per_day=1))
    table = writer.table(TABLE)
    table.transaction().set_properties(**{"write.target-file-size-bytes": "20000"}) \
        .commit_transaction()
    writer.replace(slice_rows([day(i) for i in range(31)], per_day=400))
    march = [p for p in live_paths(writer) if "report_date_month=2025-03" in p]
    assert len(march) > 2  # split, each file a run of whole days
    ranges = []
    for path in march:
        days = pq.read_table(path.removeprefix("file://"), columns=["report_date"])["report_date"]
        ranges.append((pc.min(days).as_py(), pc.max(days).as_py()))
    ranges.sort()
    assert all(a[1] < b[0] for a, b in itertools.pairwise(ranges))
    before = set(march)
    result = writer.replace(slice_rows([day(15)], T0 + timedelta(days=1), per_day=400,
                                       cost="9.0000"))
    assert result.files_removed == 1 and result.files_added == 1
    after = {p for p in live_paths(writer) if "report_date_month=2025-03" in p}
    assert len(before - after) == 1 and len(after - before) == 1
    assert totals(scan(writer))[("1001", "ident-sp", day(15))] == (400, Decimal("3600.0000"))
    assert month_of(day(15)) == month_of(day(0))
