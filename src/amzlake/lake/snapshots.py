"""Snapshot producers maintenance needs that pyiceberg 0.12 does not offer as public API.

- `replace_files`: a REPLACE snapshot (rows unchanged, files rearranged: compaction), so engines
  reading a table incrementally skip it. pyiceberg's `overwrite()` always says OVERWRITE; its
  `_OverwriteFiles` producer takes the operation, so it is used with REPLACE here. pyiceberg's
  summary totals refuse REPLACE (they only know append, overwrite and delete, though the totals
  are computed the same way): they are computed as for an overwrite and the operation set after.
- `rewrite_manifests`: a REPLACE snapshot whose manifests are the table's live entries written
  anew, ordered by partition. Every overwrite leaves a manifest behind (its added files, its
  deleted entries), so without this a table read by partition would list more manifests each day.
  pyiceberg has no manifest rewrite (Iceberg's Java API has RewriteManifests); it is written here
  on pyiceberg's own snapshot producer, manifest writer and entry types.

Both rest on pyiceberg 0.12's snapshot producer internals (`_SnapshotProducer`, `_OverwriteFiles`):
pinned in uv.lock; revisit on upgrade (tests cover both).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from pyiceberg.manifest import DataFile, ManifestContent, ManifestEntry, ManifestFile
from pyiceberg.table import Transaction
from pyiceberg.table.snapshots import Operation, Summary
from pyiceberg.table.update.snapshot import _OverwriteFiles, _SnapshotProducer
from pyiceberg.typedef import EMPTY_DICT

# Rewritten manifests hold the entries in (month, account) order, cut at a month boundary once
# they hold this many: a filter on report_date then reads few of them, and a commit that changes
# the last months' files rewrites only the manifests of those months, not one of the whole table.
ENTRIES_PER_MANIFEST = 256


class _ReplaceSummary:
    """Summary totals computed as for an overwrite, then labelled REPLACE."""

    _operation: Operation

    def _summary(self, snapshot_properties: dict[str, str] = EMPTY_DICT) -> Summary:
        self._operation = Operation.OVERWRITE
        try:
            summary = super()._summary(snapshot_properties)  # type: ignore[misc]
        finally:
            self._operation = Operation.REPLACE
        return Summary(Operation.REPLACE, **summary.additional_properties)


class _ReplaceFiles(_ReplaceSummary, _OverwriteFiles):
    pass


def replace_files(txn: Transaction, removed: Iterable[DataFile], added: Iterable[DataFile],
                  properties: dict[str, str]) -> None:
    """Stage in `txn` a REPLACE snapshot that swaps `removed` for `added` (same rows)."""
    producer = _ReplaceFiles(operation=Operation.REPLACE, transaction=txn, io=txn._table.io,
                             snapshot_properties=properties)
    for f in removed:
        producer.delete_data_file(f)
    for f in added:
        producer.append_data_file(f)
    producer.commit()


class _RewriteManifests(_ReplaceSummary, _SnapshotProducer["_RewriteManifests"]):
    def __init__(self, txn: Transaction, properties: dict[str, str],
                 entries_per_manifest: int) -> None:
        super().__init__(Operation.REPLACE, txn, txn._table.io, snapshot_properties=properties)
        self.entries_per_manifest = entries_per_manifest

    def _deleted_entries(self) -> list[ManifestEntry]:
        return []

    def _existing_manifests(self) -> list[ManifestFile]:
        snapshot = self._transaction.table_metadata.current_snapshot()
        if snapshot is None:
            return []
        kept: list[ManifestFile] = []
        by_spec: dict[int, list[ManifestEntry]] = defaultdict(list)
        for manifest in snapshot.manifests(self._io):
            if manifest.content != ManifestContent.DATA:
                kept.append(manifest)  # delete files (amzlake writes none): left as they are
                continue
            for entry in manifest.fetch_manifest_entry(self._io, discard_deleted=True):
                by_spec[manifest.partition_spec_id].append(entry)
        out = list(kept)
        for spec_id, entries in sorted(by_spec.items()):
            entries.sort(key=lambda e: _partition_key(e.data_file))
            for chunk in _chunks(entries, self.entries_per_manifest):
                with self.new_manifest_writer(self.spec(spec_id)) as writer:
                    for entry in chunk:
                        writer.existing(entry)
                out.append(writer.to_manifest_file())
        return out


def _chunks(entries: list[ManifestEntry], size: int) -> Iterable[list[ManifestEntry]]:
    """`entries` (sorted) cut where the leading partition value changes, once a chunk has
    `size` entries (a chunk can so be larger, never split inside one month)."""
    chunk: list[ManifestEntry] = []
    for entry in entries:
        if len(chunk) >= size and _partition_key(entry.data_file)[0] != \
                _partition_key(chunk[-1].data_file)[0]:
            yield chunk
            chunk = []
        chunk.append(entry)
    if chunk:
        yield chunk


def _partition_key(data_file: DataFile) -> tuple[Any, ...]:
    # Last partition field first: amzlake's spec is (account_id, month), so months cluster.
    values = tuple(data_file.partition)
    return (*((v is None, v if v is not None else 0) for v in reversed(values)),
            data_file.file_path)


def rewrite_manifests(txn: Transaction, properties: dict[str, str],
                      entries_per_manifest: int = ENTRIES_PER_MANIFEST) -> None:
    """Stage in `txn` a REPLACE snapshot holding the live entries in few manifests, in partition
    order (so a filter on a partition reads few of them)."""
    _RewriteManifests(txn, properties, entries_per_manifest).commit()


def manifest_count(txn_or_table: Any) -> int:
    """How many manifests the current snapshot of a table lists."""
    table = txn_or_table
    snapshot = table.current_snapshot()
    return 0 if snapshot is None else len(snapshot.manifests(table.io))
