"""Lake maintenance: snapshot expiry, orphan removal, manifests, dry runs, concurrent writers."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from amzlake.lake.catalog import open_catalog
from amzlake.lake.maintenance import MaintenancePolicy, maintain_table
from amzlake.lake.writer import LakeWriter
from tests.integration.lake_helpers import T0, TABLE, day, slice_rows

NOW = T0 + timedelta(days=30)


def files_on_disk(lake: Path) -> dict[str, int]:
    """Every file under the lake's warehouse, with its size."""
    out = {}
    for root, _, names in os.walk(lake / "warehouse"):
        for n in names:
            out[os.path.join(root, n)] = os.path.getsize(os.path.join(root, n))
    return out


def live_data(writer: LakeWriter) -> dict[str, int]:
    return {t.file.file_path.removeprefix("file://"): t.file.file_size_in_bytes
            for t in writer.table(TABLE).scan().plan_files()}


def content(writer: LakeWriter) -> tuple[int, Decimal]:
    t = writer.table(TABLE).scan().to_arrow()
    return t.num_rows, pa.compute.sum(t["cost"]).as_py()


def aged_lake(lake: Path, days: int = 20) -> LakeWriter:
    """A table restated daily for `days` days of the job clock (commits dated by it)."""
    clock = [T0]
    writer = LakeWriter(open_catalog(lake), now=lambda: clock[0])
    writer.replace(slice_rows([day(i) for i in range(31)], T0, cost="1.0000"))
    for i in range(1, days + 1):
        clock[0] = T0 + timedelta(days=i)
        for age in (1, 2, 3, 7):
            if i - age >= 0:
                writer.replace(slice_rows([day(i - age)], clock[0], cost=f"{i}.0000"))
    return writer


def test_expiry_keeps_the_retention_and_deletes_only_what_expired_snapshots_used(
        tmp_path: Path) -> None:
    writer = aged_lake(tmp_path / "lake")
    before = content(writer)
    snapshots = len(writer.table(TABLE).metadata.snapshots)
    disk_before = sum(files_on_disk(tmp_path / "lake").values())
    policy = MaintenancePolicy(snapshot_retention=timedelta(days=3), min_snapshots=2)
    report = maintain_table(writer.catalog, "amzlake", TABLE, policy, now=T0 + timedelta(days=20))
    table = writer.table(TABLE)
    assert content(writer) == before
    assert report.snapshots_expired > 0 and report.files_deleted > 0
    kept = table.metadata.snapshots
    # Commits of the last three days stay (with maintenance's own); older ones are gone.
    assert len(kept) < snapshots and len(kept) == report.snapshots_kept
    from amzlake.lake.maintenance import snapshot_time
    oldest = min(snapshot_time(s) for s in kept)
    assert oldest >= T0 + timedelta(days=17)
    # Every live file is still there; the warehouse shrank.
    disk = files_on_disk(tmp_path / "lake")
    assert set(live_data(writer)) <= set(disk)
    assert sum(disk.values()) < disk_before
    # Time travel to a kept snapshot still reads.
    old = table.scan(snapshot_id=kept[0].snapshot_id).to_arrow()
    assert old.num_rows == before[0]


def test_after_maintenance_the_folder_holds_live_files_and_retained_snapshots_only(
        tmp_path: Path) -> None:
    writer = aged_lake(tmp_path / "lake", days=10)
    policy = MaintenancePolicy(snapshot_retention=timedelta(days=1), min_snapshots=1,
                               orphan_age=timedelta(0))
    maintain_table(writer.catalog, "amzlake", TABLE, policy, now=T0 + timedelta(days=30))
    table = writer.table(TABLE)
    assert len(table.metadata.snapshots) == 1
    disk = files_on_disk(tmp_path / "lake")
    data = {p: n for p, n in disk.items() if p.endswith(".parquet")}
    assert data == live_data(writer)
    # Metadata: the one snapshot's manifest list and manifests, and the table's metadata files
    # (the current one and at most write.metadata.previous-versions-max before it).
    snap = table.current_snapshot()
    avro = {p for p in disk if p.endswith(".avro")}
    assert avro == {m.removeprefix("file://") for m in
                    [snap.manifest_list, *(m.manifest_path for m in snap.manifests(table.io))]}
    assert len([p for p in disk if p.endswith(".metadata.json")]) <= 11


def test_orphans_are_removed_once_old_and_never_a_live_or_young_file(tmp_path: Path) -> None:
    writer = aged_lake(tmp_path / "lake", days=3)
    live = live_data(writer)
    folder = Path(next(iter(live))).parent
    old, young = folder / "killed-writer.parquet", folder / "in-flight.parquet"
    for f in (old, young):
        f.write_bytes(b"PAR1 left behind")
    long_ago = time.time() - 5 * 86400
    os.utime(old, (long_ago, long_ago))
    for path in live:  # live files older than the safety age too: still never touched
        os.utime(path, (long_ago, long_ago))
    report = maintain_table(writer.catalog, "amzlake", TABLE,
                            MaintenancePolicy(orphan_age=timedelta(days=3)), now=NOW)
    assert report.orphans_deleted == 1 and not old.exists() and young.exists()
    assert report.orphans_young >= 1
    assert all(Path(p).exists() for p in live)
    assert content(writer)[0] == 93


def test_a_dry_run_changes_nothing(tmp_path: Path) -> None:
    writer = aged_lake(tmp_path / "lake", days=5)
    disk = files_on_disk(tmp_path / "lake")
    snapshots = len(writer.table(TABLE).metadata.snapshots)
    report = maintain_table(writer.catalog, "amzlake", TABLE,
                            MaintenancePolicy(snapshot_retention=timedelta(hours=1),
                                              orphan_age=timedelta(0)), now=NOW, dry_run=True)
    assert report.dry_run and report.snapshots_expired > 0 and report.files_deleted > 0
    assert files_on_disk(tmp_path / "lake") == disk
    assert len(writer.table(TABLE).metadata.snapshots) == snapshots


def test_manifests_are_rewritten_into_few_and_reads_are_unchanged(tmp_path: Path) -> None:
    writer = aged_lake(tmp_path / "lake", days=8)
    table = writer.table(TABLE)
    assert len(table.current_snapshot().manifests(table.io)) > 10
    before = content(writer)
    report = maintain_table(writer.catalog, "amzlake", TABLE, MaintenancePolicy(), now=NOW)
    table = writer.table(TABLE)
    assert report.manifests_before > 10 and report.manifests_after <= 2
    assert len(table.current_snapshot().manifests(table.io)) == report.manifests_after
    assert content(writer) == before
    assert table.current_snapshot().summary.operation.value == "replace"


def test_compaction_and_expiry_under_a_concurrent_transform_lose_and_double_nothing(
        tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    # Start from a day-partitioned-like mess: many files per partition from other writers.
    writer = LakeWriter(open_catalog(lake))
    for account in ("1001", "2002"):
        writer.replace(slice_rows([day(i) for i in range(31)], T0, account=account,
                                  cost="1.0000"))
    expected: dict[tuple[str, object], Decimal] = {
        (a, day(i)): Decimal("3.0000") for a in ("1001", "2002") for i in range(31)}
    errors: list[BaseException] = []
    stop = threading.Event()

    def transform() -> None:
        w = LakeWriter(open_catalog(lake))
        try:
            for i in range(1, 25):
                account = ("1001", "2002")[i % 2]
                d = day(i % 31)
                w.replace(slice_rows([d], T0 + timedelta(hours=i), account=account,
                                     cost=f"{i}.0000"))
                expected[(account, d)] = Decimal(i) * 3
        except BaseException as e:  # reported by the assertion below
            errors.append(e)
        finally:
            stop.set()

    def maintain() -> None:
        catalog = open_catalog(lake)
        policy = MaintenancePolicy(snapshot_retention=timedelta(0), min_snapshots=1,
                                   orphan_age=timedelta(days=3))
        try:
            while not stop.is_set():
                maintain_table(catalog, "amzlake", TABLE, policy,
                               now=datetime.now(UTC) + timedelta(days=1))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=transform), threading.Thread(target=maintain)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors
    t = writer.table(TABLE).scan().to_arrow()
    g = t.group_by(["account_id", "report_date"]).aggregate([("cost", "sum"), ("cost", "count")])
    got = {(a, d): s for a, d, s in zip(g["account_id"].to_pylist(), g["report_date"].to_pylist(),
                                        g["cost_sum"].to_pylist(), strict=True)}
    assert got == expected
    assert set(g["cost_count"].to_pylist()) == {3}
    # Whatever maintenance expired, every live file is on disk.
    assert all(Path(p).exists() for p in live_data(writer))


@pytest.mark.parametrize("dry_run", [False, True])
def test_maintain_command_reports_per_table(tmp_path: Path, dry_run: bool) -> None:
    import json
    import subprocess
    import sys

    lake = tmp_path / "lake"
    aged_lake(lake, days=4)
    (tmp_path / "amzlake.toml").write_text(
        f'[storage]\nlake = "{lake}"\nraw = "{tmp_path / "raw"}"\n'
        '[maintenance]\nsnapshot_retention = "1d"\n')
    args = [sys.executable, "-m", "amzlake", "maintain", "--json"] + (["--dry-run"] * dry_run)
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    (table,) = out["tables"]
    assert out["dry_run"] is dry_run and table["table"] == TABLE
    assert table["snapshots_expired"] > 0 and table["dry_run"] is dry_run
