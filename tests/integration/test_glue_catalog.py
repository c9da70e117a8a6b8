"""The curated tables in the Glue Data Catalog on S3 (the AWS runtime's catalog), on moto.

The same transform and writer as the embedded runtime, only the catalog properties change: after
an ingestion against the emulator, every slice lands in an Iceberg table registered in Glue, with
its data and metadata files in the curated bucket.
"""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import boto3

from amzlake.ingest.states import SliceState
from amzlake.lake.catalog import open_catalog
from amzlake.transform.curate import Transformer
from tests.conftest import RunningEmulator
from tests.integration.ingest_helpers import emulator_config, run_once
from tests.integration.lake_helpers import glue_properties


def test_the_transform_commits_to_glue_tables_on_s3(make_emulator, tmp_path: Path, moto_server: str,
                                                     aws_env: None) -> None:
    emu: RunningEmulator = make_emulator(token_lifetime=10**7)
    config, env = emulator_config(emu, tmp_path, ads={"countries": ["US"], "reports": [
        {"report_type": "spCampaigns"}, {"report_type": "spAdvertisedProduct"}]},
        vendor={"reports": [{"report_type": "GET_VENDOR_SALES_REPORT"}]})
    _, ingestion, _ = run_once(emu, config, env)
    bucket = f"curated-{uuid.uuid4().hex[:8]}"
    database = f"amzlake_{uuid.uuid4().hex[:8]}"  # the moto server is shared by the session
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket=bucket)
    props = glue_properties(moto_server, bucket)

    result = Transformer(ledger=ingestion.ledger, store=ingestion.store,
                         raw_location=config.storage.raw_location, lake_dir=tmp_path / "unused",
                         notifiers=[], workers=1, catalog_overrides=props,
                         namespace=database).run()
    assert result.commits and not result.quarantined
    entries = ingestion.ledger.query()
    assert {e.state for e in entries} == {SliceState.CURATED}

    glue = boto3.client("glue", endpoint_url=moto_server)
    registered = {t["Name"]: t for t in glue.get_tables(DatabaseName=database)["TableList"]}
    assert {"ads_sp_campaigns_daily", "ads_sp_advertised_product_daily", "vendor_sales_aggregate",
            "vendor_sales_by_asin"} <= set(registered)
    # Glue points at Iceberg metadata in the curated bucket.
    for table in registered.values():
        assert table["Parameters"]["table_type"].upper() == "ICEBERG"
        assert table["Parameters"]["metadata_location"].startswith(f"s3://{bucket}/warehouse/")
    # Every committed row is there, slice by slice.
    catalog = open_catalog(tmp_path / "unused", props)
    in_glue: Counter[str] = Counter()
    for name in registered:
        keys = catalog.load_table((database, name)).scan(selected_fields=("slice_key",)).to_arrow()
        in_glue.update(keys.column("slice_key").to_pylist())
    assert in_glue == Counter({e.slice_key: e.row_count for e in entries if e.row_count})
    data = boto3.client("s3", endpoint_url=moto_server).list_objects_v2(
        Bucket=bucket, Prefix=f"warehouse/{database}.db/")["KeyCount"]
    assert data > 0
