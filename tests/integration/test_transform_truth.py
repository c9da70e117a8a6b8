"""Every Ads and vendor report type, ingested from the emulator, parses to the emulator's truth.

One `amzlake run` lands every report type in the raw zone; each stored document is parsed, and
its row counts and metric sums (money as exact Decimals) must equal the ones the emulator
generated it from (GET /_emulator/truth/...), with every declared column of its declared type.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from amzlake.catalog.ads import ADS_REPORT_TYPES
from amzlake.catalog.vendor import VENDOR_REPORT_TYPES
from amzlake.ingest.states import SliceState
from amzlake.storage.ledger import LedgerEntry
from amzlake.transform.curate import context_for
from amzlake.transform.model import SliceContext
from amzlake.transform.names import ads_table, path_column, snake
from amzlake.transform.parse import parse_document
from amzlake.transform.schemas import AMOUNT, VENDOR_DOCUMENTS, ads_schema, vendor_tables
from tests.conftest import RunningEmulator, scenario_for_tests
from tests.integration.ingest_helpers import emulator_config, run_once

LONG_TOKENS = 10**7
CSV_TYPES = {t for t, rt in ADS_REPORT_TYPES.items() if "CSV" in rt.formats}
# Served without compressionAlgorithm, as plain JSON (the emulator's "uncompressed" fault).
PLAIN_TYPES = ("GET_VENDOR_SALES_REPORT", "GET_VENDOR_FORECASTING_REPORT")


def context_of(e: LedgerEntry) -> SliceContext:
    return context_for(e)  # what the transform step itself builds from a ledger row


def exact_sum(values: list[Any]) -> int | Decimal:
    """The exact sum of a column's values (a float by its shortest repr: the text sent)."""
    total: int | Decimal = 0
    for v in values:
        if v is None:
            continue
        total += Decimal(repr(v)) if isinstance(v, float) else v
    return total


def vendor_target(report_type: str, key: str) -> tuple[str, str]:
    """The (table, column) a vendor truth key such as `salesByAsin.orderedRevenue` lands in."""
    parts = key.split(".")
    doc = VENDOR_DOCUMENTS[report_type]
    table = max((t for t in doc.tables if tuple(parts[: len(t.array)]) == t.array),
                key=lambda t: len(t.array))
    field = ".".join(parts[len(table.array):])
    kind = dict(table.fields)[field]
    column = path_column(field.split("."))
    return table.name, column + "_amount" if kind == AMOUNT else column


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Landed]:
    """One run of every report type against one emulator, shared by this module's tests."""
    from amzlake.emulator.server import EmulatorServer

    faults = [{"kind": "uncompressed", "report_type": t} for t in PLAIN_TYPES]
    server = EmulatorServer(scenario_for_tests(token_lifetime=LONG_TOKENS, faults=faults)).start()
    client = httpx.Client(base_url=server.base_url, timeout=30.0)
    try:
        creds = client.get("/_emulator/credentials").json()
        emu = RunningEmulator(server.base_url, server.state, creds, client)
        yield _run_everything(emu, tmp_path_factory.mktemp("transform-truth"))
    finally:
        client.close()
        server.stop()


def _run_everything(emu: RunningEmulator, folder: Path) -> Landed:
    asin = emu.state.world.asins(emu.credentials["vendor"][0]["marketplace_id"])[0]
    # Coupons and promotions start every few days: a 30-day window holds some.
    windowed = {"GET_COUPON_PERFORMANCE_REPORT", "GET_PROMOTION_PERFORMANCE_REPORT"}
    vendor_reports: list[dict[str, Any]] = [
        {"report_type": t, **({"lookback_days": 30} if t in windowed else {})}
        for t in VENDOR_REPORT_TYPES if t != "GET_BRAND_ANALYTICS_SEARCH_QUERY_PERFORMANCE_REPORT"]
    vendor_reports.append({"report_type": "GET_BRAND_ANALYTICS_SEARCH_QUERY_PERFORMANCE_REPORT",
                           "options": {"asin": asin}})
    config, env = emulator_config(
        emu, folder,
        ads={"countries": ["US"], "lookback_days": 2,
             # The gross-and-invalid-traffic reports in CSV, the other format they offer.
             "reports": [{"report_type": t, **({"format": "CSV"} if t in CSV_TYPES else {})}
                         for t in ADS_REPORT_TYPES]},
        vendor={"reports": vendor_reports, "brand_analytics": True, "lookback_days": 2},
    )
    result, ingestion, _ = run_once(emu, config, env)
    assert not result.failed, [(r.report_type, r.error) for r in result.failed][:5]
    entries = [e for e in ingestion.ledger.query() if e.state is SliceState.DOWNLOADED]
    return Landed(emu, ingestion.store, entries, config)


@dataclass
class Landed:
    """The module's shared run: the emulator, the raw zone, the downloaded slices, the config."""

    emu: RunningEmulator
    store: Any
    entries: list[LedgerEntry]
    config: Any


def parse_entry(store: Any, e: LedgerEntry) -> dict[str, pa.Table]:
    with store.open_read(e.raw_objects[-1].key) as f:
        doc = parse_document(context_of(e), f)
        return {t.table: pa.Table.from_batches(list(t.batches), schema=t.schema)
                for t in doc.tables}


def test_every_report_type_landed(landed: Landed) -> None:
    entries = landed.entries
    types = {(e.source, e.report_type) for e in entries}
    assert {t for s, t in types if s == "ads"} == set(ADS_REPORT_TYPES)
    assert {t for s, t in types if s == "vendor"} == set(VENDOR_REPORT_TYPES)
    csv = {e.report_type for e in entries if e.source == "ads" and e.spec["format"] == "CSV"}
    assert csv == CSV_TYPES and len(csv) == 3  # sp, sb and sd gross and invalids


def test_ads_rows_and_sums_equal_the_truth(
        landed: Landed) -> None:
    emu, store, entries = landed.emu, landed.store, landed.entries
    for e in (e for e in entries if e.source == "ads"):
        truth = emu.client.get(f"/_emulator/truth/ads/{e.remote_report_id}").json()["truth"]
        (name, table), = parse_entry(store, e).items()
        where = f"{e.report_type} {e.start}..{e.end}"
        assert name == ads_table(e.report_type, e.spec["timeUnit"]), where
        declared = ads_schema(e.report_type, e.spec["timeUnit"])
        assert table.schema.equals(declared), where  # no surprise columns, every type as declared
        assert table.num_rows == truth["rows"], where
        for column, expected in truth["sums"].items():
            got = exact_sum(table.column(snake(column)).to_pylist())
            assert got == (Decimal(expected) if isinstance(expected, str) else expected), (
                where, column)
        days = {d.isoformat() for d in table.column("report_date").to_pylist()}
        assert days <= set(truth["details"]["byDate"]), where


def test_vendor_rows_and_sums_equal_the_truth(
        landed: Landed) -> None:
    emu, store, entries = landed.emu, landed.store, landed.entries
    declared = vendor_tables()
    checked: dict[str, int] = defaultdict(int)
    for e in (e for e in entries if e.source == "vendor"):
        truth = emu.client.get(f"/_emulator/truth/spapi/{e.remote_report_id}").json()["truth"]
        tables = parse_entry(store, e)
        where = f"{e.report_type} {e.start}..{e.end}"
        for name, table in tables.items():
            assert table.schema.equals(declared[name]), (where, name)
        doc = VENDOR_DOCUMENTS[e.report_type]
        for array, count in truth["details"]["arrays"].items():
            top = next(t for t in doc.tables if t.array == (array,))
            assert tables[top.name].num_rows == count, (where, array)
        for key, expected in truth["sums"].items():
            name, column = vendor_target(e.report_type, key)
            got = exact_sum(tables[name].column(column).to_pylist())
            assert got == (Decimal(expected) if isinstance(expected, str) else expected), (
                where, key)
            checked[e.report_type] += 1
    assert set(checked) == set(VENDOR_REPORT_TYPES)  # every type had sums to check


def test_documents_served_uncompressed_are_kept_as_served(landed: Landed) -> None:
    plain = [e for e in landed.entries if e.report_type in PLAIN_TYPES]
    assert {e.report_type for e in plain} == set(PLAIN_TYPES)
    for e in landed.entries:
        key = e.raw_objects[-1].key
        assert key.endswith(".json" if e.report_type in PLAIN_TYPES else ".json.gz"), key
        with landed.store.open_read(key) as f:
            head = f.read(2)
        assert (head[:1] == b"{") == (e.report_type in PLAIN_TYPES), (key, head)  # else gzip


def test_ads_ids_stay_int64(landed: Landed) -> None:
    store, entries = landed.store, landed.entries
    e = next(e for e in entries if e.report_type == "spAdvertisedProduct")
    (table,) = parse_entry(store, e).values()
    for col in ("campaign_id", "ad_group_id", "ad_id"):
        assert table.schema.field(col).type == pa.int64()
        assert table.column(col).null_count == 0


def test_curated_tables_hold_exactly_the_documents_rows(
        landed: Landed) -> None:
    """Through the transform step into Iceberg: per slice and table, the rows and every numeric
    column's sum equal what the raw document holds (every Ads and vendor report type)."""
    from amzlake.lake.catalog import open_catalog
    from amzlake.transform.curate import Transformer

    store, entries, config = landed.store, landed.entries, landed.config
    lake = Path(config.storage.lake)
    result = Transformer(ledger=_NoLedger(), store=store, raw_location=config.storage.raw_location,
                         lake_dir=lake, notifiers=[], workers=2).run(entries)
    assert not result.quarantined, [o.quarantined for o in result.quarantined][:3]
    catalog = open_catalog(lake)
    for e in entries:
        for name, parsed in parse_entry(store, e).items():
            curated = catalog.load_table(("amzlake", name)).scan(
                row_filter=f"slice_key == '{e.slice_key}'").to_arrow()
            where = f"{name} {e.report_type} {e.start}..{e.end}"
            assert curated.num_rows == parsed.num_rows, where
            for field in parsed.schema:
                if pa.types.is_integer(field.type) or pa.types.is_decimal(field.type):
                    assert exact_sum(curated.column(field.name).to_pylist()) == exact_sum(
                        parsed.column(field.name).to_pylist()), (where, field.name)


class _NoLedger:
    """The transform's ledger, standing in when only the tables are under test."""

    def get(self, key: str) -> None:
        return None

    def acquire(self, key: str, *_: object) -> str:  # every claim is granted
        return key

    def extend(self, *_: object) -> bool:
        return True

    def release(self, *_: object) -> None:
        return None

