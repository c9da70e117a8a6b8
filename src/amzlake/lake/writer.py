"""Commit slices' rows to their Iceberg tables: replace their footprints in one atomic commit.

The rule (amzlake.transform.model, amzlake.lake.decide): a slice's rows replace every row of the
same account and report identity on the days it covers, except days the table, or another slice
of the same commit, holds from a LATER fetch. Reruns are idempotent, restated days replace old
numbers, overlapping slices never double count, a day re-pulled with no data loses its rows, and
the order in which slices are committed does not matter.

How (pyiceberg 0.12; the layout is amzlake.lake.layout):
- `stage` writes a slice's rows into Parquet files of the table's (account, month) partitions
  (amzlake.lake.staging), with field ids. New columns are added to the table's schema first, in
  a commit of their own, so every staged file carries the id its column has in the table.
- `commit` takes the staged slices of one table (any number: a whole transform run) and applies
  them in ONE overwrite snapshot: it reads the lineage columns of the files in the partitions they
  touch, decides per (account, identity, day) which fetch wins, and merges the surviving rows and
  the winning staged rows into one file per partition (amzlake.lake.merge). A partition gains no
  file per slice, so the table stays a few files per account and month however often its days
  are restated. A staged file that is the only thing in a new partition is added as it is.
- pyiceberg's own commit retry is off on our tables (`commit.retry.num-retries=0`): after a
  conflict (a concurrent writer or maintenance) the winners must be decided again on the new
  table state, so `commit` reloads and redoes the whole decision (bounded attempts, jitter).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchTableError,
    TableAlreadyExistsError,
    ValidationException,
)
from pyiceberg.schema import Schema, assign_fresh_schema_ids
from pyiceberg.table import Table, TableProperties

from amzlake.lake.commit_plan import LiveFile, merge_inputs, plan_groups, table_state, well_formed
from amzlake.lake.datafiles import data_files, output_schema
from amzlake.lake.decide import Claim, decide
from amzlake.lake.layout import (
    PARTITION_FIELDS,
    ROW_GROUP_ROWS,
    TABLE_PROPERTIES,
    has_current_spec,
    nullable_data_schema,
    partition_spec_for,
    sort_order_for,
    target_file_bytes,
)
from amzlake.lake.merge import MergeInput, WrittenFile, merge
from amzlake.lake.staging import LakeCommitError, StagedRows, Stager, discard_files, stage_rows
from amzlake.transform.model import Footprint, TableRows

__all__ = ["CommitResult", "LakeCommitError", "LakeWriter", "StagedRows", "footprint_days"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommitResult:
    """What one commit did to one table for one slice."""

    table: str
    snapshot_id: int | None  # the table's current snapshot after the commit (None: still empty)
    rows_added: int
    rows_replaced: int  # rows deleted from the footprint (the older copy of the same days)
    partitions: tuple[date, ...]  # report_date values whose rows changed
    days_skipped_as_older: tuple[date, ...]  # days a later fetch holds: this slice's rows dropped
    columns_added: tuple[str, ...] = ()
    files_added: int = 0  # of the whole commit (shared by the slices committed together)
    files_removed: int = 0
    attempts: int = 1
    committed: bool = True  # False when the slice changed nothing


def footprint_days(footprint: Footprint, extra: Iterable[date] = ()) -> list[date]:
    """Every day the footprint covers, plus the `extra` days the slice has rows on."""
    days = {footprint.first_day + timedelta(days=i)
            for i in range((footprint.last_day - footprint.first_day).days + 1)}
    return sorted(days | set(extra))


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def lake_identifier(namespace: str, table: str) -> tuple[str, str]:
    """The catalog identifier of a curated table."""
    return (namespace, table)


class LakeWriter:
    """Stages slices' rows and commits them to curated Iceberg tables (see the module doc)."""

    def __init__(
        self,
        catalog: Catalog,
        namespace: str = "amzlake",
        *,
        max_attempts: int = 10,
        row_group_rows: int = ROW_GROUP_ROWS,
        buffer_bytes: int = 8 * 1024 * 1024,
        max_open_files: int = 8,
        compression: str = "zstd",
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.catalog = catalog
        self.namespace = namespace
        self.max_attempts = max_attempts
        self.row_group_rows = row_group_rows
        self.buffer_bytes = buffer_bytes
        self.max_open_files = max_open_files
        self.compression = compression
        self.now = now  # the job's clock: snapshot ages for maintenance are read in it
        self._random = random.Random()
        self._staging: dict[str, Table] = {}  # tables as staging last saw them (see stage)

    # ---- tables -------------------------------------------------------------------------------

    def exists(self, name: str) -> bool:
        """Whether the table `name` is in the catalog."""
        return bool(self.catalog.table_exists(lake_identifier(self.namespace, name)))

    def table(self, name: str, schema: pa.Schema | None = None) -> Table:
        """The table `name` in the current layout, created from `schema` on first use (None: it
        must exist). A table of an earlier layout gets the current spec (files stay put)."""
        ident = lake_identifier(self.namespace, name)
        try:
            table = self.catalog.load_table(ident)
        except NoSuchTableError:
            if schema is None:
                raise
            table = self._create(ident, schema)
        # Defaults a table lacks (a user's own setting, e.g. a target file size, stays), and no
        # pyiceberg commit retry whatever was set: it would re-apply a stale decision.
        missing = {k: v for k, v in TABLE_PROPERTIES.items() if k not in table.properties}
        if table.properties.get(TableProperties.COMMIT_NUM_RETRIES) != "0":
            missing[TableProperties.COMMIT_NUM_RETRIES] = "0"
        if TableProperties.DEFAULT_NAME_MAPPING not in table.properties:
            # Files written before field ids (and by other tools) are read through the mapping.
            missing[TableProperties.DEFAULT_NAME_MAPPING] = (
                table.schema().name_mapping.model_dump_json())
        if missing or not has_current_spec(table):
            table = self._with_retries(ident, lambda t: _adopt_layout(t, missing))
        return table

    def _create(self, ident: tuple[str, str], schema: pa.Schema) -> Table:
        missing = [c for c, _, _ in PARTITION_FIELDS if c not in schema.names]
        if missing:
            raise LakeCommitError(f"table {ident[1]}: rows lack lineage columns {missing}")
        iceberg = assign_fresh_schema_ids(
            Catalog._convert_schema_if_needed(nullable_data_schema(schema))
        )
        self._ensure_namespace()
        try:
            return self.catalog.create_table(
                ident,
                schema=iceberg,
                partition_spec=partition_spec_for(iceberg),
                sort_order=sort_order_for(iceberg),
                properties={
                    **TABLE_PROPERTIES,
                    TableProperties.DEFAULT_NAME_MAPPING: iceberg.name_mapping.model_dump_json(),
                },
            )
        except TableAlreadyExistsError:  # a concurrent writer made it first
            return self.catalog.load_table(ident)

    def _ensure_namespace(self) -> None:
        """Create the namespace unless it exists; a writer racing to create it too is fine."""
        try:
            self.catalog.create_namespace(self.namespace)
        except NamespaceAlreadyExistsError:
            pass
        except Exception:
            # The SQL catalog reports a lost race as its database's unique-key error, not as
            # NamespaceAlreadyExistsError: if the namespace is there now, someone else made it.
            if (self.namespace,) not in [tuple(n) for n in self.catalog.list_namespaces()]:
                raise

    def _with_retries(self, ident: tuple[str, str], change: Callable[[Table], Table]) -> Table:
        """`change` applied to the freshly loaded table, again after a conflicting commit."""
        for attempt in range(1, self.max_attempts + 1):
            table = self.catalog.load_table(ident)
            try:
                return change(table)
            except (CommitFailedException, ValidationException) as e:
                if attempt == self.max_attempts:
                    raise LakeCommitError(f"table {ident[1]}: gave up after {attempt} "
                                          f"conflicting commits: {e}") from e
                self._pause(attempt)
        raise AssertionError("unreachable")

    def _columns_for(self, ident: tuple[str, str], schema: pa.Schema) -> Schema:
        """The table's schema, with `schema`'s unknown columns added first (own commit)."""
        known = self._staging.get(ident[1])
        if known is not None and set(schema.names) <= {f.name for f in known.schema().fields}:
            return known.schema()  # a column's id never changes once the table has it
        table = self.catalog.load_table(ident)
        if set(schema.names) <= {f.name for f in table.schema().fields}:
            self._staging[ident[1]] = table
            return table.schema()

        def add(t: Table) -> Table:
            if set(schema.names) <= {f.name for f in t.schema().fields}:
                return t
            with t.update_schema() as update:
                update.union_by_name(nullable_data_schema(schema))
            return self.catalog.load_table(ident)

        table = self._with_retries(ident, add)
        self._staging[ident[1]] = table
        return table.schema()

    def _pause(self, attempt: int) -> None:
        time.sleep(self._random.uniform(0.01, 0.05 * 2 ** min(attempt, 5)))

    # ---- stage --------------------------------------------------------------------------------

    def stage(self, rows: TableRows, slice_key: str = "") -> StagedRows:
        """Write `rows` into staged files of its table (created on first use); not committed.

        A writer that stages many slices (a worker's chunk) loads each table once: staging
        needs only its location and its columns' ids, which never change once given."""
        table = self._staging.get(rows.table)
        if table is None:
            table = self._staging[rows.table] = self.table(rows.table, rows.schema)
        ident = lake_identifier(self.namespace, rows.table)
        before = {f.name for f in table.schema().fields}
        stager = Stager(table.io, table.location(), rows.footprint,
                        lambda schema: self._columns_for(ident, schema),
                        row_group_rows=self.row_group_rows, buffer_bytes=self.buffer_bytes,
                        max_open_files=self.max_open_files, compression=self.compression)
        files = stage_rows(rows, stager)
        after = self._staging[rows.table].schema()
        seen = set(rows.schema.names) | set(stager.schema.names if stager.schema else ())
        added = tuple(f.name for f in after.fields if f.name not in before and f.name in seen)
        return StagedRows(rows.table, rows.footprint, slice_key, tuple(files), added)

    def discard(self, staged: Iterable[StagedRows]) -> None:
        """Delete the files of staged slices that will not be committed."""
        for item in staged:
            if item.files:
                io = self.table(item.table).io
                discard_files(io, [f.path for f in item.files])

    def replace(self, rows: TableRows) -> CommitResult:
        """Stage `rows` and commit them alone: what changed."""
        return self.commit(rows.table, [self.stage(rows)])[0]

    # ---- commit -------------------------------------------------------------------------------

    def commit(self, name: str, staged: Sequence[StagedRows]) -> list[CommitResult]:
        """Apply the staged slices of table `name` in one atomic commit; one result per slice,
        in their order. Staged files not committed as they are are deleted, whatever happens."""
        ident = lake_identifier(self.namespace, name)
        table = self.table(name)
        kept: set[str] = set()
        try:
            for attempt in range(1, self.max_attempts + 1):
                try:
                    results, kept = self._commit_once(table, name, staged, attempt)
                    return results
                except (CommitFailedException, ValidationException, FileNotFoundError) as e:
                    # FileNotFoundError: a file planned from a stale state was removed by a
                    # concurrent commit and maintenance; the next attempt sees the new state.
                    if attempt == self.max_attempts:
                        raise LakeCommitError(
                            f"table {name}: gave up after {attempt} conflicting commits: {e}"
                        ) from e
                    log.info("table %s: concurrent commit, retrying (%s)", name, e)
                    self._pause(attempt)
                    table = self.catalog.load_table(ident)
            raise AssertionError("unreachable")
        finally:
            discard_files(table.io, [f.path for s in staged for f in s.files
                                     if f.path not in kept])

    def _commit_once(self, table: Table, name: str, staged: Sequence[StagedRows], attempt: int
                     ) -> tuple[list[CommitResult], set[str]]:
        claims = [Claim(s.footprint.account_id, s.footprint.identity_key,
                        frozenset(footprint_days(s.footprint, s.days)),
                        _as_utc(s.footprint.fetched_at), s.slice_key or str(i))
                  for i, s in enumerate(staged)]
        state = table_state(table, claims)
        decision = decide(claims, state.newest)
        groups, dropped = plan_groups(table, staged, state, decision)

        direct: list[str] = []
        merges: list[tuple[list[MergeInput], list[LiveFile]]] = []
        for group in groups.values():
            only = group.staged[0] if len(group.staged) == 1 else None
            if not group.existing and only is not None and only[1] == only[0].days \
                    and well_formed(only[0]):
                direct.append(only[0].path)
            else:
                merges.append((merge_inputs(group, decision), group.existing))

        written: list[WrittenFile] = []
        try:
            schema = output_schema(table.schema())
            target = target_file_bytes(table)
            for inputs, _ in merges:
                written += merge(table.io, inputs, location=table.location(), schema=schema,
                                 target_bytes=target, row_group_rows=self.row_group_rows,
                                 compression=self.compression)
            removed = dropped + [f for _, existing in merges for f in existing]
            snapshot_id = table.current_snapshot().snapshot_id if table.current_snapshot() else None
            committed = bool(removed or direct or written)
            if committed:
                txn = table.transaction()
                meta = txn.table_metadata
                new_files = (data_files(table.io, meta, direct, sorted_=False)
                             + data_files(table.io, meta, [w.path for w in written], sorted_=True))
                props = {"amzlake.committed-at": _as_utc(self.now()).isoformat(),
                         "amzlake.slices": str(len(staged))}
                with txn.update_snapshot(snapshot_properties=props).overwrite() as overwrite:
                    for f in removed:
                        overwrite.delete_data_file(f.data_file)
                    for data_file in new_files:
                        overwrite.append_data_file(data_file)
                table = txn.commit_transaction()
                snap = table.current_snapshot()
                snapshot_id = snap.snapshot_id if snap else None
        except BaseException:
            discard_files(table.io, [w.path for w in written])
            raise
        results = []
        for i, s in enumerate(staged):
            won = decision.won[i]
            added = sum(n for f in s.files for d, n in f.rows_per_day if d in won)
            replaced = sum(state.counts.get((claims[i].account_id, claims[i].identity_key, d), 0)
                           for d in won)
            changed = {d for d in won
                       if state.counts.get((claims[i].account_id, claims[i].identity_key, d))}
            changed |= {d for f in s.files for d, n in f.rows_per_day if d in won and n}
            results.append(CommitResult(
                table=name, snapshot_id=snapshot_id, rows_added=added, rows_replaced=replaced,
                partitions=tuple(sorted(changed)),
                days_skipped_as_older=tuple(sorted(decision.skipped[i])),
                columns_added=s.columns_added, files_added=len(direct) + len(written),
                files_removed=len(removed), attempts=attempt,
                committed=committed and bool(added or replaced or s.columns_added)))
        return results, set(direct)


# ---- The commit's pieces (pure, or reading files only) -------------------------------------------


def _adopt_layout(table: Table, properties: dict[str, str]) -> Table:
    """`table` with amzlake's properties, partition spec and sort order (one commit)."""
    txn = table.transaction()
    if properties:
        txn.set_properties(**properties)
    if not has_current_spec(table):
        schema = table.schema()
        want = {(column, str(transform)) for column, transform, _ in PARTITION_FIELDS}
        have = {(schema.find_field(f.source_id).name, str(f.transform)): f.name
                for f in table.spec().fields}
        with txn.update_spec() as update:
            for key, name in have.items():
                if key not in want:
                    update.remove_field(name)
            for column, transform, name in PARTITION_FIELDS:
                if (column, str(transform)) not in have:
                    update.add_field(column, transform, name)
        order = sort_order_for(schema)
        with txn.update_sort_order() as sort:
            for f in order.fields:
                sort.asc(schema.find_field(f.source_id).name, f.transform)
    return txn.commit_transaction()


