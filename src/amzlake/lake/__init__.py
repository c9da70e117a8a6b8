"""The curated lake: Iceberg catalog, replace-by-footprint writer, DuckDB query layer."""

from amzlake.lake.catalog import catalog_from_config, catalog_properties, open_catalog
from amzlake.lake.writer import CommitResult, LakeCommitError, LakeWriter

__all__ = [
    "CommitResult",
    "LakeCommitError",
    "LakeWriter",
    "catalog_from_config",
    "catalog_properties",
    "open_catalog",
]
