"""Maintenance as the configuration asks for it: `amzlake maintain`, and after `amzlake run`.

The time of the last maintenance is kept as a property of the lake's namespace
(`amzlake.last-maintenance`, the job clock's time), so every runtime and every process sharing the
catalog sees it: a run maintains the lake at most once per `[maintenance] every`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from amzlake.lake.maintenance import MaintenancePolicy, TableReport, maintain_lake

log = logging.getLogger(__name__)

LAST_MAINTENANCE = "amzlake.last-maintenance"
NAMESPACE = "amzlake"


def policy_of(section: Any) -> MaintenancePolicy:
    """The policy a [maintenance] config section describes."""
    return MaintenancePolicy(snapshot_retention=section.snapshot_retention,
                             min_snapshots=section.min_snapshots, orphan_age=section.orphan_age,
                             compact=section.compact)


def last_maintenance(catalog: Any, namespace: str = NAMESPACE) -> datetime | None:
    """When the lake was last maintained (None: never, or no namespace yet)."""
    from pyiceberg.exceptions import NoSuchNamespaceError

    try:
        value = catalog.load_namespace_properties(namespace).get(LAST_MAINTENANCE)
    except NoSuchNamespaceError:
        return None
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def maintain_configured(config: Any, *, now: datetime | None = None, dry_run: bool = False,
                        tables: Sequence[str] | None = None,
                        progress: Callable[[TableReport], None] | None = None,
                        catalog: Any = None, namespace: str = NAMESPACE) -> list[TableReport]:
    """Maintain the configured lake now (or `catalog`, e.g. the Glue Data Catalog); records the
    time unless it is a dry run or only some tables."""
    from amzlake.lake.catalog import catalog_from_config

    catalog = catalog if catalog is not None else catalog_from_config(config)
    at = now or datetime.now(UTC)
    reports = maintain_lake(catalog, namespace, policy_of(config.maintenance), now=at,
                            dry_run=dry_run, tables=tables, progress=progress)
    if not dry_run and reports and not tables:
        catalog.update_namespace_properties(namespace, updates={LAST_MAINTENANCE: at.isoformat()})
    return reports


def maintain_if_due(config: Any, now: datetime, *, catalog: Any = None,
                    namespace: str = NAMESPACE) -> list[TableReport] | None:
    """Maintain the lake if [maintenance] after_run is on and `every` has passed since the last
    time; the reports, or None when it was not due."""
    from amzlake.lake.catalog import catalog_from_config

    section = config.maintenance
    if not section.after_run:
        return None
    catalog = catalog if catalog is not None else catalog_from_config(config)
    last = last_maintenance(catalog, namespace)
    if last is not None and now - last < section.every:
        return None
    log.info("maintaining the lake (last: %s)", last.isoformat() if last else "never")
    return maintain_configured(config, now=now, catalog=catalog, namespace=namespace)


def report_line(r: TableReport) -> str:
    """One line on what maintenance did to a table."""
    verb = "would" if r.dry_run else "did"
    parts = [f"{r.table}: {r.files_before} -> {r.files_after if not r.dry_run else '?'} files"]
    if r.partitions_compacted:
        parts.append(f"compacted {r.partitions_compacted} partition(s) "
                     f"({r.files_rewritten} files into {r.files_written})")
    if r.manifests_before != r.manifests_after:
        parts.append(f"manifests {r.manifests_before} -> {r.manifests_after}")
    if r.snapshots_expired:
        parts.append(f"expired {r.snapshots_expired} snapshot(s), deleted {r.files_deleted} "
                     f"file(s) ({_mb(r.bytes_deleted)})")
    if r.orphans_deleted:
        parts.append(f"removed {r.orphans_deleted} orphan file(s) ({_mb(r.orphan_bytes)})")
    if r.partitions_left:
        parts.append(f"{r.partitions_left} partition(s) left: changed by a concurrent commit")
    if len(parts) == 1:
        parts.append("nothing to do")
    return f"[{verb}] " + "; ".join(parts)


def print_reports(reports: Sequence[TableReport], *, dry_run: bool) -> None:
    """A closing line for `amzlake maintain` (each table's line was printed as it finished)."""
    live = sum(r.live_bytes for r in reports)
    freed = sum(r.bytes_deleted + r.orphan_bytes for r in reports)
    what = "would free" if dry_run else "freed"
    print(f"{len(reports)} table(s), {_mb(live)} of live data; {what} {_mb(freed)}")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
