"""Lake maintenance: keep every table small and fast as it ages (`amzlake maintain`).

Per table, in this order:
1. **Compact**: rewrite the files of every (account, month) partition that holds more files than
   its bytes need (at most one spare), every file of an earlier layout (day-partitioned tables
   of amzlake 0.1) and every file that spans partitions, into sorted files of the current layout.
   One REPLACE commit per batch of partitions; a batch whose files a concurrent commit changed is
   left for the next maintenance (its new files are deleted), the rest are committed again on the
   new table state. Rows are never decided here: a compacted partition holds exactly the rows its
   files held.
2. **Rewrite manifests** when the current snapshot lists more than a few: every commit leaves a
   manifest behind, and a query plans by reading them.
3. **Expire snapshots** older than the retention, always keeping the newest few of the current
   history and every branch or tag head, then delete the files only expired snapshots used.
   A snapshot's age is read from the job clock amzlake recorded at commit
   (`amzlake.committed-at`), else from its Iceberg timestamp.
4. **Remove orphan files**: files under the table's folder that no snapshot or metadata file
   references (left by a killed writer), once older than a safety age by their modification time,
   so a file a commit in flight is about to reference is never taken.

`--dry-run` computes all of it and changes nothing.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import pyarrow.fs as pafs
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from amzlake.lake.datafiles import data_files, output_schema, partition_of
from amzlake.lake.layout import target_file_bytes
from amzlake.lake.merge import MergeInput, merge
from amzlake.lake.snapshots import replace_files, rewrite_manifests
from amzlake.lake.staging import discard_files
from amzlake.lake.writer import LakeWriter

log = logging.getLogger(__name__)

COMMITTED_AT = "amzlake.committed-at"
MANIFESTS_KEPT = 4  # a table's current snapshot may list this many before they are rewritten


@dataclass(frozen=True)
class MaintenancePolicy:
    """How maintenance treats a table (the [maintenance] config section)."""

    snapshot_retention: timedelta = timedelta(days=7)
    min_snapshots: int = 3
    orphan_age: timedelta = timedelta(days=3)
    compact: bool = True
    # Bytes of files one compaction commit rewrites at most (a conflict loses at most this).
    commit_bytes: int = 1024 * 1024 * 1024


@dataclass
class TableReport:
    """What maintenance did (or, with dry_run, would do) to one table."""

    table: str
    dry_run: bool = False
    files_before: int = 0
    files_after: int = 0
    live_bytes: int = 0  # of the data files of the current snapshot, after
    partitions_compacted: int = 0
    files_rewritten: int = 0
    files_written: int = 0
    partitions_left: int = 0  # compaction skipped: a concurrent commit changed their files
    manifests_before: int = 0
    manifests_after: int = 0
    snapshots_expired: int = 0
    snapshots_kept: int = 0
    files_deleted: int = 0  # used only by expired snapshots
    bytes_deleted: int = 0
    orphans_deleted: int = 0
    orphan_bytes: int = 0
    orphans_young: int = 0  # unreferenced but younger than the safety age: kept for now

    def as_json(self) -> dict[str, Any]:
        """The report as a JSON object."""
        return asdict(self)


@dataclass
class _Group:
    files: list[DataFile] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(f.file_size_in_bytes for f in self.files)


def maintain_lake(catalog: Catalog, namespace: str, policy: MaintenancePolicy, *,
                  now: datetime, dry_run: bool = False, tables: Sequence[str] | None = None,
                  progress: Callable[[TableReport], None] | None = None) -> list[TableReport]:
    """Maintain every curated table of `namespace` (or only `tables`); a report per table."""
    from amzlake.lake.query import curated_tables

    names = list(tables) if tables else curated_tables(catalog, namespace)
    reports = []
    for name in names:
        report = maintain_table(catalog, namespace, name, policy, now=now, dry_run=dry_run)
        reports.append(report)
        if progress is not None:
            progress(report)
    return reports


def maintain_table(catalog: Catalog, namespace: str, name: str, policy: MaintenancePolicy, *,
                   now: datetime, dry_run: bool = False) -> TableReport:
    """Compact, rewrite manifests, expire snapshots and remove orphans of one table."""
    writer = LakeWriter(catalog, namespace, now=lambda: now)
    report = TableReport(name, dry_run)
    table = catalog.load_table((namespace, name)) if dry_run else writer.table(name)
    live = _live_files(table)
    report.files_before = len(live)
    report.manifests_before = _manifest_count(table)
    if policy.compact:
        table = _compact(writer, table, live, policy, report, now=now, dry_run=dry_run)
    if not dry_run and _manifest_count(table) > MANIFESTS_KEPT:
        table = _commit_with_retries(
            writer, name, lambda t: _rewrite_manifests(t, now) if
            _manifest_count(t) > MANIFESTS_KEPT else t)
    report.manifests_after = _manifest_count(table) if not dry_run else report.manifests_before
    table = _expire(writer, name, table, policy, report, now=now, dry_run=dry_run)
    _remove_orphans(table, policy, report, dry_run=dry_run)
    live = _live_files(table)
    if not dry_run:
        report.files_after = len(live)
    report.live_bytes = sum(f.file_size_in_bytes for f in live)
    return report


# ---- 1. Compaction ------------------------------------------------------------------------------


def _live_files(table: Table) -> list[DataFile]:
    if table.current_snapshot() is None:
        return []
    return [task.file for task in table.scan().plan_files()]


def compaction_groups(table: Table, files: Iterable[DataFile]) -> list[_Group]:
    """The partitions whose files compaction rewrites (see the module doc), largest first."""
    target = target_file_bytes(table)
    spec_id = table.spec().spec_id
    by_partition: dict[object, _Group] = defaultdict(_Group)
    for f in files:
        part = partition_of(table, f)
        by_partition[part if part is not None else ("*", f.file_path)].files.append(f)
    out = []
    for key, group in by_partition.items():
        needed = max(1, math.ceil(group.bytes / target))
        foreign = key[0] == "*"
        if foreign or any(f.spec_id != spec_id for f in group.files) \
                or len(group.files) > needed + 1:
            out.append(group)
    return sorted(out, key=lambda g: -g.bytes)


def _batches(groups: list[_Group], limit: int) -> list[list[_Group]]:
    batches: list[list[_Group]] = []
    size = 0
    for group in groups:
        if not batches or size + group.bytes > limit:
            batches.append([])
            size = 0
        batches[-1].append(group)
        size += group.bytes
    return batches


def _compact(writer: LakeWriter, table: Table, live: list[DataFile], policy: MaintenancePolicy,
             report: TableReport, *, now: datetime, dry_run: bool) -> Table:
    groups = compaction_groups(table, live)
    if dry_run:
        report.partitions_compacted = len(groups)
        report.files_rewritten = sum(len(g.files) for g in groups)
        return table
    schema = output_schema(table.schema())
    for batch in _batches(groups, policy.commit_bytes):
        written: dict[int, list[str]] = {}
        for i, group in enumerate(batch):
            out = merge(table.io, [MergeInput(f.file_path) for f in group.files],
                        location=table.location(), schema=schema,
                        target_bytes=target_file_bytes(table), row_group_rows=writer.row_group_rows,
                        compression=writer.compression)
            written[i] = [w.path for w in out]
        table = _commit_compaction(writer, table.name()[-1], batch, written, report, now)
    return table


def _commit_compaction(writer: LakeWriter, name: str, batch: list[_Group],
                       written: dict[int, list[str]], report: TableReport, now: datetime) -> Table:
    """Commit a batch's rewrites; groups whose files changed meanwhile are dropped."""
    ident = (writer.namespace, name)
    for attempt in range(1, writer.max_attempts + 1):
        table = writer.catalog.load_table(ident)
        live = {f.file_path for f in _live_files(table)}
        keep = [i for i, g in enumerate(batch) if all(f.file_path in live for f in g.files)]
        for i in set(written) - set(keep):
            discard_files(table.io, written.pop(i))
            report.partitions_left += 1
        if not keep:
            return table
        removed = [f for i in keep for f in batch[i].files]
        try:
            txn = table.transaction()
            added = data_files(table.io, txn.table_metadata,
                                [p for i in keep for p in written[i]], sorted_=True)
            replace_files(txn, removed, added, {COMMITTED_AT: _utc(now).isoformat()})
            table = txn.commit_transaction()
        except (CommitFailedException, ValidationException) as e:
            if attempt == writer.max_attempts:
                for i in keep:
                    discard_files(table.io, written[i])
                report.partitions_left += len(keep)
                log.warning("table %s: compaction gave up after %d conflicts: %s",
                            name, attempt, e)
                return writer.catalog.load_table(ident)
            writer._pause(attempt)
            continue
        report.partitions_compacted += len(keep)
        report.files_rewritten += len(removed)
        report.files_written += len(added)
        return table
    raise AssertionError("unreachable")


# ---- 2. Manifests -------------------------------------------------------------------------------


def _manifest_count(table: Table) -> int:
    snapshot = table.current_snapshot()
    return 0 if snapshot is None else len(snapshot.manifests(table.io))


def _rewrite_manifests(table: Table, now: datetime) -> Table:
    txn = table.transaction()
    rewrite_manifests(txn, {COMMITTED_AT: _utc(now).isoformat()})
    return txn.commit_transaction()


def _commit_with_retries(writer: LakeWriter, name: str, change: Callable[[Table], Table]) -> Table:
    return writer._with_retries((writer.namespace, name), change)


# ---- 3. Snapshot expiry -------------------------------------------------------------------------


def snapshot_time(snapshot: Snapshot) -> datetime:
    """When a snapshot was committed: amzlake's recorded clock time, else Iceberg's timestamp."""
    recorded = snapshot.summary.additional_properties.get(COMMITTED_AT) if snapshot.summary \
        else None
    if recorded:
        try:
            return _utc(datetime.fromisoformat(recorded))
        except ValueError:
            pass
    return datetime.fromtimestamp(snapshot.timestamp_ms / 1000, UTC)


def expirable(table: Table, policy: MaintenancePolicy, now: datetime) -> list[int]:
    """Ids of the snapshots older than the retention, less the newest few and every ref head."""
    meta = table.metadata
    protected = {ref.snapshot_id for ref in meta.refs.values()}
    ancestry: list[int] = []
    snap = table.current_snapshot()
    while snap is not None and len(ancestry) < policy.min_snapshots:
        ancestry.append(snap.snapshot_id)
        snap = meta.snapshot_by_id(snap.parent_snapshot_id) if snap.parent_snapshot_id else None
    cutoff = _utc(now) - policy.snapshot_retention
    return [s.snapshot_id for s in meta.snapshots
            if s.snapshot_id not in protected and s.snapshot_id not in ancestry
            and snapshot_time(s) < cutoff]


class _Reachability:
    """Files reachable from snapshots (manifest lists, manifests, data files), memoised."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._entries: dict[str, list[str]] = {}

    def files(self, snapshots: Iterable[Snapshot]) -> set[str]:
        out: set[str] = set()
        for snap in snapshots:
            out.add(snap.manifest_list)
            for manifest in snap.manifests(self.table.io):
                out.add(manifest.manifest_path)
                if manifest.manifest_path not in self._entries:
                    self._entries[manifest.manifest_path] = [
                        e.data_file.file_path
                        for e in manifest.fetch_manifest_entry(self.table.io, discard_deleted=True)]
                out.update(self._entries[manifest.manifest_path])
        return out


def _expire(writer: LakeWriter, name: str, table: Table, policy: MaintenancePolicy,
            report: TableReport, *, now: datetime, dry_run: bool) -> Table:
    ids = expirable(table, policy, now)
    report.snapshots_expired = len(ids)
    report.snapshots_kept = len(table.metadata.snapshots) - len(ids)
    if not ids:
        return table
    reach = _Reachability(table)
    gone = reach.files(s for s in table.metadata.snapshots if s.snapshot_id in ids)
    if not dry_run:
        def expire(t: Table) -> Table:
            present = [i for i in ids if t.metadata.snapshot_by_id(i) is not None]
            if present:
                t.maintenance.expire_snapshots().by_ids(present).commit()
            return writer.catalog.load_table((writer.namespace, name))

        table = _commit_with_retries(writer, name, expire)
    kept = reach.files(s for s in table.metadata.snapshots if s.snapshot_id not in ids)
    doomed = sorted(gone - kept)
    sizes = _sizes(table, doomed)
    report.files_deleted = len(doomed)
    report.bytes_deleted = sum(sizes.values())
    if not dry_run:
        discard_files(table.io, doomed)
    return table


# ---- 4. Orphans ---------------------------------------------------------------------------------


def _filesystem(table: Table, location: str) -> tuple[pafs.FileSystem, str]:
    parsed = urlparse(location)
    fs = table.io.fs_by_scheme(parsed.scheme or "file", parsed.netloc)  # type: ignore[attr-defined]
    path = parsed.path if parsed.scheme in ("", "file") else f"{parsed.netloc}{parsed.path}"
    return fs, path


def _as_uri(location: str, path: str) -> str:
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return f"file://{path}" if location.startswith("file:") else path
    return f"{parsed.scheme}://{path}"


def _listing(table: Table) -> dict[str, pafs.FileInfo]:
    """Every file under the table's folder, by the URI the table's metadata would use."""
    fs, root = _filesystem(table, table.location())
    try:
        infos = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    except FileNotFoundError:
        return {}
    return {_as_uri(table.location(), i.path): i for i in infos
            if i.type == pafs.FileType.File}


def _sizes(table: Table, paths: Iterable[str]) -> dict[str, int]:
    listing = _listing(table)
    return {p: listing[p].size for p in paths if p in listing and listing[p].size is not None}


def _remove_orphans(table: Table, policy: MaintenancePolicy, report: TableReport, *,
                    dry_run: bool) -> None:
    listing = _listing(table)
    referenced = _Reachability(table).files(table.metadata.snapshots)
    referenced.add(table.metadata_location)
    referenced.update(entry.metadata_file for entry in table.metadata.metadata_log)
    cutoff = datetime.now(UTC) - policy.orphan_age  # file ages are wall-clock modification times
    orphans = []
    for path, info in listing.items():
        if path in referenced:
            continue
        mtime = info.mtime
        if mtime is not None and _utc(mtime) > cutoff:
            report.orphans_young += 1
            continue
        orphans.append(path)
        report.orphan_bytes += info.size or 0
    report.orphans_deleted = len(orphans)
    if orphans and not dry_run:
        discard_files(table.io, orphans)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
