"""The commit's plan: what the table holds where the staged slices land, and what to rewrite.

Reads only the lineage columns of the files in the partitions a commit touches; decides nothing
about winners itself (amzlake.lake.decide does), only which files to drop whole, which to fold
into a partition's rewrite, and which staged files can become table files as they are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.expressions import And, BooleanExpression, EqualTo, GreaterThanOrEqual, LessThanOrEqual, Or
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table

from amzlake.lake.datafiles import Partition, partition_of
from amzlake.lake.decide import Claim, Decision, Key
from amzlake.lake.layout import month_end, month_of, month_start, target_file_bytes
from amzlake.lake.merge import MergeInput
from amzlake.lake.staging import StagedFile, StagedRows

# A staged file is added as it is (no rewrite) when its row groups are this big on average:
# smaller ones would leave a file whose footer outweighs its rows; those are merged instead.
DIRECT_ADD_MIN_ROWS_PER_GROUP = 10_000
LINEAGE_READ = ["account_id", "identity_key", "report_date", "fetched_at"]


@dataclass
class LiveFile:
    """A data file of the touched partitions, with the lineage keys it holds."""

    data_file: DataFile
    partition: Partition | None  # None: a file of another layout spanning partitions
    keys: dict[Key, int] = field(default_factory=dict)  # rows per key

    @property
    def path(self) -> str:
        return self.data_file.file_path


@dataclass
class TableState:
    files: list[LiveFile]
    newest: dict[Key, datetime]
    counts: dict[Key, int]


@dataclass
class Group:
    """What one partition's commit work is: existing files to fold, staged rows to add."""

    existing: list[LiveFile] = field(default_factory=list)
    staged: list[tuple[StagedFile, set[date]]] = field(default_factory=list)


def months_filter(claims: Sequence[Claim]) -> BooleanExpression:
    """Rows of the claims' accounts in the calendar months their days fall in."""
    parts: set[Partition] = {(c.account_id, month_of(d)) for c in claims for d in c.days}
    exprs: list[BooleanExpression] = [
        And(EqualTo("account_id", account),
            And(GreaterThanOrEqual("report_date", month_start(m).isoformat()),
                LessThanOrEqual("report_date", month_end(m).isoformat())))
        for account, m in sorted(parts)
    ]
    out = exprs[0]
    for e in exprs[1:]:
        out = Or(out, e)
    return out


def table_state(table: Table, claims: Sequence[Claim]) -> TableState:
    """The files of every partition the claims touch, and their lineage keys' newest fetch."""
    if table.current_snapshot() is None or not claims:
        return TableState([], {}, {})
    files: list[LiveFile] = []
    newest: dict[Key, datetime] = {}
    counts: dict[Key, int] = defaultdict(int)
    for task in table.scan(row_filter=months_filter(claims)).plan_files():
        live = LiveFile(task.file, partition_of(table, task.file))
        with table.io.new_input(task.file.file_path).open() as stream:
            parquet = pq.ParquetFile(stream)
            names = parquet.schema_arrow.names
            lineage = parquet.read(columns=[c for c in LINEAGE_READ if c in names])
        if lineage.num_rows:
            grouped = lineage.group_by(["account_id", "identity_key", "report_date"]).aggregate(
                [("fetched_at", "max"), ("fetched_at", "count")])
            for acc, ident, day, at, n in zip(
                    grouped["account_id"].to_pylist(), grouped["identity_key"].to_pylist(),
                    grouped["report_date"].to_pylist(), grouped["fetched_at_max"].to_pylist(),
                    grouped["fetched_at_count"].to_pylist(), strict=True):
                key = (acc, ident, day)
                live.keys[key] = n
                counts[key] += n
                at = _as_utc(at)
                if key not in newest or at > newest[key]:
                    newest[key] = at
        files.append(live)
    return TableState(files, newest, dict(counts))


def plan_groups(table: Table, staged: Sequence[StagedRows], state: TableState,
                 decision: Decision) -> tuple[dict[object, Group], list[LiveFile]]:
    """Per partition, the existing files to fold and the staged rows to add; the files dropped
    whole (every row of them replaced)."""
    groups: dict[object, Group] = defaultdict(Group)
    dropped: list[LiveFile] = []
    touched: set[str] = set()
    for f in state.files:
        hit = [k for k in f.keys if k in decision.replaced]
        if not hit:
            continue
        touched.add(f.path)
        if len(hit) == len(f.keys):
            dropped.append(f)
        else:
            groups[f.partition if f.partition is not None else f.path].existing.append(f)
    for i, s in enumerate(staged):
        for sf in s.files:
            won = sf.days & decision.won[i]
            if won:
                groups[(sf.account_id, sf.month)].staged.append((sf, won))
    target = target_file_bytes(table)
    by_partition: dict[Partition, list[LiveFile]] = defaultdict(list)
    for f in state.files:
        if f.path not in touched and f.partition is not None:
            by_partition[f.partition].append(f)
    for key, group in groups.items():
        if not isinstance(key, tuple) or not group.staged or group.existing:
            continue
        # New rows for a partition that has a file: fold them into its latest small file rather
        # than adding a file beside it.
        small = [f for f in by_partition.get(key, [])
                 if f.data_file.file_size_in_bytes < target // 2]
        if small:
            group.existing.append(max(small, key=lambda f: max(k[2] for k in f.keys)
                                      if f.keys else date.min))
    return dict(groups), dropped


def merge_inputs(group: Group, decision: Decision) -> list[MergeInput]:
    """The merge inputs of a group: existing files less their replaced rows, staged won days."""
    inputs = []
    replaced = _KeyMatcher(decision.replaced)
    for f in group.existing:
        inputs.append(MergeInput(f.path, replaced.not_in if any(
            k in decision.replaced for k in f.keys) else None))
    for sf, won in group.staged:
        inputs.append(MergeInput(sf.path, None if won == sf.days else _DayMatcher(won).mask))
    return inputs


class _KeyMatcher:
    """Matches rows against a set of (account, identity, day) keys."""

    def __init__(self, keys: set[Key]) -> None:
        self.wanted = pa.array(sorted(f"{a}|{i}|{d.isoformat()}" for a, i, d in keys),
                               pa.string())

    def not_in(self, table: pa.Table) -> pa.Array:
        """True for the rows whose key is not in the set."""
        keys = pc.binary_join_element_wise(
            table.column("account_id").cast(pa.string()),
            table.column("identity_key").cast(pa.string()),
            table.column("report_date").cast(pa.string()), "|")
        return pc.invert(pc.is_in(keys, value_set=self.wanted))


class _DayMatcher:
    def __init__(self, days: set[date]) -> None:
        self.days = pa.array(sorted(days), pa.date32())

    def mask(self, table: pa.Table) -> pa.Array:
        return pc.is_in(table.column("report_date"), value_set=self.days)


def well_formed(f: StagedFile) -> bool:
    """Whether a staged file is fit to be a table file as it is (few, full row groups)."""
    return f.row_groups <= 1 or f.rows / f.row_groups >= DIRECT_ADD_MIN_ROWS_PER_GROUP


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
