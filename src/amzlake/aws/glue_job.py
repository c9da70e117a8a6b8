"""The Glue 5.0 Spark job: amzlake's transform spread over executors (guidance steps 5-7).

The driver lists the downloaded slices in the ledger and runs amzlake's transform in two Spark
stages, as the embedded transform does in its process pool (amzlake.transform.curate):
1. stage: one task per slice (`sc.parallelize(tasks, n).map(stage)`): each executor reads the raw
   document, parses it and writes its rows as staged Parquet files of its tables;
2. commit: one task per table, holding every staged slice of that table: each executor commits
   its table once (pyiceberg; with `--warehouse` the catalog is the Glue Data Catalog).
So a run of thousands of slices makes one Iceberg commit per table, not thousands of optimistic
commits racing on the same few tables. The outcomes come back to the driver, which records them
exactly as the embedded transform does (`record_outcome`: ledger curated / quarantined,
quarantine record, notifier events) and prints a JSON summary (also written to `--summary_out`
when given).

Once a day (`[maintenance] every`) the job then maintains the tables with amzlake's own
maintenance (amzlake.lake.maintenance), as `amzlake run` does: the Glue Data Catalog's managed
Iceberg optimizers would need each table to exist before the stack could configure them (the job
creates them), compact without amzlake's (account, month) layout in view, and age snapshots by
the wall clock, not by the commit times amzlake records.

The script imports nothing that Glue 5.0 lacks besides this package and its dependencies (which
`--additional-python-modules` installs from the wheel that amzlake.aws.bundling builds with
`uv build --wheel`; the stack deploys it and this file as the script): `awsglue` only
parses the arguments when it is there, and pyspark is Glue's own. Locally (tests, a laptop) the
same code runs in pyspark local mode with argparse:

    python -m amzlake.aws.glue_job --config amzlake.toml --master 'local[2]'

Arguments (Glue passes `--name value`; names use underscores, as getResolvedOptions requires:
docs.aws.amazon.com/glue/latest/dg/aws-glue-api-crawler-pyspark-extensions-get-resolved-options):
  --config           s3://bucket/key.toml or a local TOML path (else env AMZLAKE_CONFIG_S3)
  --config_json      the configuration as JSON (else env AMZLAKE_CONFIG_JSON)
  --warehouse        s3://curated-bucket/prefix: the tables live in the Glue Data Catalog
  --catalog_properties  JSON object of extra pyiceberg catalog properties (e.g. glue.id)
  --database         the Iceberg namespace / Glue database (default amzlake)
  --partitions       how many Spark partitions (default: one per slice)
  --summary_out      where to write the summary JSON as well (s3://bucket/key or a path)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amzlake.config import AmzlakeConfig, parse_config
from amzlake.errors import AmzlakeError, ConfigError
from amzlake.ingest.states import SliceState
from amzlake.lake.catalog import open_catalog
from amzlake.lake.upkeep import maintain_if_due
from amzlake.notify import Notifier, notifiers_from_config
from amzlake.storage.ledger import Ledger, open_ledger
from amzlake.storage.objects import ObjectStore, open_store
from amzlake.transform.curate import (
    CommitTask,
    CurateTask,
    StageOutcome,
    TableCommit,
    TransformResult,
    commit_table,
    commit_tasks,
    curate_tasks,
    outcomes_of,
    pending,
    record_outcome,
    stage_slice,
)

log = logging.getLogger("amzlake.glue_job")

DEFAULT_DATABASE = "amzlake"
ENV_CONFIG_JSON = "AMZLAKE_CONFIG_JSON"
ENV_CONFIG_S3 = "AMZLAKE_CONFIG_S3"
# The job's own arguments; Glue adds its own (JOB_NAME, JOB_RUN_ID, TempDir, ...) around them.
OPTIONS = ("config", "config_json", "warehouse", "catalog_properties", "database", "partitions",
           "summary_out")


class GlueJobFailed(AmzlakeError):
    """Some slices could not be curated for a reason other than their document (left pending)."""


@dataclass(frozen=True)
class JobArgs:
    """The job's arguments, however they were passed."""

    config: str | None = None
    config_json: str | None = None
    warehouse: str | None = None
    catalog_properties: str | None = None
    database: str = DEFAULT_DATABASE
    partitions: int = 0  # 0: one partition per slice
    summary_out: str | None = None
    master: str | None = None  # local runs only, e.g. local[2]; Glue brings its own cluster


@dataclass(frozen=True)
class TaskError:
    """A slice whose curate raised something other than an unusable document (S3, catalog, ...)."""

    slice_key: str
    raw_key: str
    error: str


@dataclass
class GlueRunResult:
    """What one run of the job did."""

    transform: TransformResult = field(default_factory=TransformResult)
    errors: list[TaskError] = field(default_factory=list)
    tasks: int = 0
    partitions: int = 0
    commits: int = 0  # Iceberg commits: one per table the run wrote


# ---- Arguments and configuration (pure, apart from reading the config) ------------------------


def _local_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="amzlake.aws.glue_job",
                                description="amzlake's transform as a Spark job")
    for name in OPTIONS:
        p.add_argument(f"--{name}", type=int if name == "partitions" else str)
    p.add_argument("--master", help="Spark master for local runs, e.g. local[2]")
    return p


def parse_args(argv: Sequence[str], *, on_glue: bool | None = None) -> JobArgs:
    """The job's arguments from `argv`: getResolvedOptions on Glue, argparse elsewhere."""
    glue = on_glue if on_glue is not None else importlib.util.find_spec("awsglue") is not None
    if glue:
        from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]

        # getResolvedOptions insists on every name it is given: ask only for those passed.
        present = [n for n in OPTIONS if f"--{n}" in argv]
        values: dict[str, Any] = dict(getResolvedOptions(["job", *argv], present))
    else:
        values = {k: v for k, v in vars(_local_parser().parse_args(list(argv))).items()
                  if v is not None}
    raw: dict[str, Any] = {k: values[k] for k in (*OPTIONS, "master") if k in values}
    if "partitions" in raw:
        try:
            raw["partitions"] = int(raw["partitions"])
        except ValueError:
            raise ConfigError(f"--partitions {raw['partitions']!r}: not a whole number") from None
        if raw["partitions"] < 0:
            raise ConfigError("--partitions must be 0 (one per slice) or more")
    return JobArgs(**raw)


def catalog_overrides(args: JobArgs) -> tuple[tuple[str, str], ...]:
    """The pyiceberg catalog properties the tasks open: Glue with --warehouse, else the lake's."""
    props: dict[str, str] = {}
    if args.warehouse:
        if not args.warehouse.startswith("s3://"):
            raise ConfigError(f"--warehouse {args.warehouse!r}: must be s3://bucket[/prefix]")
        props = {"type": "glue", "warehouse": args.warehouse}
    if args.catalog_properties:
        try:
            extra = json.loads(args.catalog_properties)
        except json.JSONDecodeError as e:
            raise ConfigError(f"--catalog_properties: not JSON: {e}") from None
        if not isinstance(extra, dict):
            raise ConfigError("--catalog_properties: must be a JSON object")
        props.update({str(k): str(v) for k, v in extra.items()})
    return tuple(sorted(props.items()))


def _read_s3_text(url: str) -> str:
    import boto3  # on Glue and in the aws extra; only when the config is on S3

    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise ConfigError(f"config {url!r}: must be s3://bucket/key")
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    return body.read().decode("utf-8")


def load_job_config(args: JobArgs, environ: Mapping[str, str] | None = None) -> AmzlakeConfig:
    """The amzlake configuration named by the arguments (or the Lambdas' env variables)."""
    env = os.environ if environ is None else environ
    text_json = args.config_json or env.get(ENV_CONFIG_JSON)
    where = args.config or env.get(ENV_CONFIG_S3)
    if text_json:
        try:
            data = json.loads(text_json)
        except json.JSONDecodeError as e:
            raise ConfigError(f"config JSON: not valid JSON: {e}") from None
        return parse_config(data, environ=env, origin="config JSON")
    if not where:
        raise ConfigError(f"no configuration: pass --config or --config_json (or set "
                          f"{ENV_CONFIG_S3} / {ENV_CONFIG_JSON})")
    if where.startswith("s3://"):
        text, base = _read_s3_text(where), Path.cwd()
    else:
        path = Path(where).expanduser()
        try:
            text, base = path.read_text(encoding="utf-8"), path.resolve().parent
        except OSError as e:
            raise ConfigError(f"config {where}: cannot read: {e}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config {where}: not valid TOML: {e}") from None
    return parse_config(data, base_dir=base, environ=env, origin=where)


# ---- The executors' side -----------------------------------------------------------------------


def stage_on_executor(task: CurateTask) -> StageOutcome | TaskError:
    """The slice's staged rows, or what went wrong when it was not the document (an executor)."""
    try:
        return stage_slice(task)
    except Exception as e:
        # An unusable document is already an outcome (quarantine); anything else (S3, Glue, a
        # bug) is reported to the driver so that every other slice is still recorded, and this
        # one stays downloaded for the next run (replace-by-slice makes the retry safe).
        return TaskError(task.context.slice_key, task.context.raw_key,
                         f"{type(e).__name__}: {e}"[:1000])


def commit_on_executor(task: CommitTask) -> TableCommit:
    """One table's commit of every staged slice of it (runs on an executor)."""
    return commit_table(task)


# ---- The driver --------------------------------------------------------------------------------


def run_transform(sc: Any, *, ledger: Ledger, store: ObjectStore, raw_location: str,
                  lake_dir: Path | str, notifiers: Sequence[Notifier],
                  catalog_overrides: tuple[tuple[str, str], ...] = (),
                  namespace: str = DEFAULT_DATABASE, partitions: int = 0,
                  now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> GlueRunResult:
    """Curates every pending slice on the Spark context's executors; returns what happened."""
    tasks = curate_tasks(pending(ledger), raw_location=raw_location, lake_dir=lake_dir,
                         catalog_overrides=catalog_overrides, namespace=namespace)
    run = GlueRunResult(tasks=len(tasks))
    if not tasks:
        return run
    # One slice per partition by default: a slice's document can be large, so the scheduler
    # balances whole slices rather than fixed groups of them.
    run.partitions = min(partitions or len(tasks), len(tasks))
    staged: list[StageOutcome] = []
    for item in sc.parallelize(tasks, run.partitions).map(stage_on_executor).collect():
        if isinstance(item, TaskError):
            log.error("slice %s not curated: %s", item.slice_key, item.error)
            run.errors.append(item)
        else:
            staged.append(item)
    commits = commit_tasks(staged, lake_dir=lake_dir, catalog_overrides=catalog_overrides,
                           namespace=namespace, committed_at=now())
    run.commits = len(commits)
    done: list[TableCommit] = (
        sc.parallelize(commits, len(commits)).map(commit_on_executor).collect() if commits else [])
    raw_keys = {s.slice_key: s.raw_key for s in staged}
    for outcome in outcomes_of(staged, done):
        if outcome.error:
            log.error("slice %s not curated: %s", outcome.slice_key, outcome.error)
            run.errors.append(TaskError(outcome.slice_key, raw_keys[outcome.slice_key],
                                        outcome.error))
        else:
            record_outcome(outcome, run.transform, ledger=ledger, store=store,
                           notifiers=notifiers, now=now())
    return run


def summary_json(run: GlueRunResult, ledger: Ledger) -> dict[str, Any]:
    """The run's summary: what it curated, committed and quarantined, its errors, what is left."""
    from amzlake.summary import transform_json

    left = len(ledger.query(states=[SliceState.DOWNLOADED]))
    return {
        "tasks": run.tasks,
        "partitions": run.partitions,
        "table_commits": run.commits,
        **transform_json([run.transform] if run.tasks else []),
        "errors": [asdict(e) for e in run.errors],
        "still_pending": left,
    }


def _write_summary(where: str, summary: Mapping[str, Any]) -> None:
    body = json.dumps(summary, indent=2, sort_keys=True).encode()
    if where.startswith("s3://"):
        import boto3

        bucket, _, key = where.removeprefix("s3://").partition("/")
        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body,
                                      ContentType="application/json")
    else:
        Path(where).write_bytes(body)


def _spark_context(master: str | None) -> Any:
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("amzlake-transform")
    if master:
        builder = builder.master(master)
    return builder.getOrCreate().sparkContext


def main(argv: Sequence[str] | None = None, *, now: Callable[[], datetime] | None = None,
         environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Runs the job; returns (and prints) its summary; raises GlueJobFailed if slices errored."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    config = load_job_config(args, environ)
    overrides = catalog_overrides(args)
    sc = _spark_context(args.master)
    ledger = open_ledger(config.storage.ledger_location)
    try:
        store = open_store(config.storage.raw_location)
        run = run_transform(
            sc, ledger=ledger, store=store, raw_location=config.storage.raw_location,
            lake_dir=config.storage.lake, notifiers=notifiers_from_config(config.notify),
            catalog_overrides=overrides, namespace=args.database, partitions=args.partitions,
            now=now or (lambda: datetime.now(UTC)))
        summary = summary_json(run, ledger)
        # Once a day ([maintenance] every), the same maintenance as the embedded runtime's:
        # compaction, manifests, snapshot expiry and orphan files (README "Deploy on AWS").
        reports = maintain_if_due(config, (now or (lambda: datetime.now(UTC)))(),
                                  catalog=open_catalog(Path(config.storage.lake), dict(overrides)),
                                  namespace=args.database)
        summary["maintenance"] = None if reports is None else [r.as_json() for r in reports]
    finally:
        ledger.close()
    print(json.dumps(summary, sort_keys=True))
    if args.summary_out:
        _write_summary(args.summary_out, summary)
    if run.errors:
        raise GlueJobFailed(f"{len(run.errors)} slice(s) not curated (left for the next run): "
                            + "; ".join(f"{e.slice_key}: {e.error}" for e in run.errors[:5]))
    return summary


if __name__ == "__main__":
    # Glue runs this file as the job script. Call the installed module's main so that what Spark
    # ships to executors refers to amzlake.aws.glue_job (in the wheel), not to __main__.
    from amzlake.aws.glue_job import main as _installed_main

    _installed_main()
