"""Print how long the emulator takes to generate one big Ads report document (not a test).

Usage: ./uvw run python benchmarks/ads_document_bench.py [size]   (size 300 gives ~1M rows)
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

from amzlake.catalog.ads import ADS_REPORT_TYPES
from amzlake.emulator.ads_data import ads_document
from amzlake.emulator.world import build_world


def main(size: int) -> None:
    """Generate spAdvertisedProduct DAILY over 31 days with 30 columns and print the figures."""
    world = build_world(seed=1, size=size)
    profile = world.ads_profiles[0]
    rt = ADS_REPORT_TYPES["spAdvertisedProduct"]
    columns = [c for c in rt.base_columns if c not in ("startDate", "endDate")][:30]
    body = {
        "startDate": "2025-01-01",
        "endDate": "2025-01-31",
        "configuration": {
            "adProduct": "SPONSORED_PRODUCTS",
            "reportTypeId": "spAdvertisedProduct",
            "groupBy": ["advertiser"],
            "columns": columns,
            "timeUnit": "DAILY",
            "format": "GZIP_JSON",
        },
    }
    t0 = time.perf_counter()
    plan = ads_document(world, profile, body, datetime(2025, 3, 10, tzinfo=UTC))
    t1 = time.perf_counter()
    size_bytes = sum(len(c) for c in plan.chunks)
    t2 = time.perf_counter()
    print(
        f"size={size} columns={len(columns)} rows={plan.truth.rows:,} json_bytes={size_bytes:,} "
        f"universe={t1 - t0:.2f}s generate={t2 - t1:.2f}s"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
