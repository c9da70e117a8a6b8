"""Open the Iceberg catalog that holds the curated tables.

Embedded runtime: a SQLite `SqlCatalog` at `<lake>/catalog.sqlite` with its warehouse (data and
metadata files) at `<lake>/warehouse`. Everything is pyiceberg catalog properties, so the AWS
runtime passes e.g. `{"type": "glue", "warehouse": "s3://curated-bucket/warehouse"}` and the
writer and the query layer above do not change.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyiceberg.catalog import Catalog, load_catalog
from sqlalchemy.exc import OperationalError

CATALOG_NAME = "amzlake"
CATALOG_FILE = "catalog.sqlite"
WAREHOUSE_DIR = "warehouse"


def default_catalog_properties(lake_dir: Path) -> dict[str, str]:
    """The embedded catalog's properties: SQLite catalog and warehouse folder under `lake_dir`."""
    lake = Path(lake_dir).expanduser().resolve()
    return {
        "type": "sql",
        # Several writers (transform workers, Spark executors) commit at once: wait for SQLite's
        # lock instead of failing after its default 5 s.
        "uri": f"sqlite:///{lake / CATALOG_FILE}?timeout=60",
        "warehouse": (lake / WAREHOUSE_DIR).as_uri(),
    }


def catalog_properties(
    lake_dir: Path, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The properties to open: the embedded defaults, or `overrides` alone when they name a type.

    An override with its own `type` (glue, rest, ...) describes a whole other catalog, so none of
    the SQLite defaults leak into it; overrides without a type adjust the defaults.
    """
    extra = {str(k): str(v) for k, v in (overrides or {}).items()}
    if "type" in extra and extra["type"] != "sql":
        return extra
    return {**default_catalog_properties(lake_dir), **extra}


def open_catalog(
    lake_dir: Path, overrides: Mapping[str, str] | None = None, *, name: str = CATALOG_NAME
) -> Catalog:
    """The Iceberg catalog for `lake_dir` (folder created for the embedded SQLite catalog)."""
    props = catalog_properties(lake_dir, overrides)
    if props.get("type") == "sql" and props.get("uri", "").startswith("sqlite:///"):
        database = props["uri"].removeprefix("sqlite:///").split("?")[0]
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        warehouse = props.get("warehouse", "")
        if warehouse.startswith("file://"):
            Path(warehouse.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    try:
        return load_catalog(name, **props)
    except OperationalError as exc:
        # The SQL catalog creates its tables on a new lake by check-then-create: transform workers
        # opening a new lake together can lose that race. The tables exist now; open it again.
        if "already exists" not in str(exc):
            raise
        return load_catalog(name, **props)


def catalog_from_config(config: Any, overrides: Mapping[str, str] | None = None) -> Catalog:
    """The catalog of an AmzlakeConfig: under its `[storage] lake` folder."""
    return open_catalog(Path(config.storage.lake), overrides)
