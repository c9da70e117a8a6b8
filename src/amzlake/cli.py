"""The `amzlake` command line."""

from __future__ import annotations

import contextlib
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from amzlake.errors import AmzlakeError, ConfigError, ScenarioError

app = typer.Typer(
    name="amzlake",
    help="Amazon Ads and Vendor Central (SP-API) reports into an Iceberg lakehouse.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _scenario(scenario_file: Path | None, overrides: dict[str, Any], faults: list[str]) -> Any:
    from amzlake.emulator.faults import Scenario, load_scenario, parse_fault_flag

    base = load_scenario(scenario_file) if scenario_file else Scenario()
    data = base.model_dump()
    data.update({k: v for k, v in overrides.items() if v is not None})
    data["faults"] = [*data["faults"], *(parse_fault_flag(f).model_dump() for f in faults)]
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ScenarioError(f"--{where.replace('_', '-')}: {first['msg']}") from None


@app.command(
    epilog=(
        "Examples:\n\n"
        "  amzlake emulator --port 8600 --seed 7 --time-scale 60\n\n"
        "  amzlake emulator --scenario faults.toml --fault throttle:operation=spapi.createReport,times=5\n\n"
        "  curl -s http://127.0.0.1:8600/_emulator/credentials"
    ),
)
def emulator(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1; 0 picks a free one.", min=0, max=65535)] = 0,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    seed: Annotated[
        int | None, typer.Option(help="Seed of all data, ids and credentials (default 1).")
    ] = None,
    time_scale: Annotated[
        float | None,
        typer.Option(help="Virtual seconds per real second: 60 makes a 1-minute rate limit a second."),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option(metavar="ISO-8601",
                     help="Virtual start time, e.g. 2026-11-27T06:00:00Z (UTC if no zone; default: now)."),
    ] = None,
    size: Annotated[
        int | None, typer.Option(help="Multiplies every account's entities; ~2000 makes 1M-row reports.")
    ] = None,
    scenario: Annotated[
        Path | None,
        typer.Option(help="Scenario file (TOML or JSON): seed, time_scale, now, size, delays, faults."),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(help="Inject a fault: KIND[:key=value,...], e.g. truncate:fraction=0.3 (repeatable). "
                     "Kinds: throttle, server_error, slow, hang, drop_download, truncate, corrupt, "
                     "expire_url, fatal, cancelled, stuck, token_expiry."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the start-up details as one JSON line.")
    ] = False,
) -> None:
    """Run the Amazon API emulator (LWA, Ads reporting v3, SP-API Reports) until Ctrl-C.

    It prints its base URL and the credentials it accepts; GET /_emulator/credentials returns them too.
    """
    from datetime import UTC

    start = None
    if now is not None:
        try:
            start = datetime.fromisoformat(now)
        except ValueError:
            raise ConfigError(f"--now: not an ISO-8601 date-time: {now!r}") from None
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
    chosen = _scenario(
        scenario, {"seed": seed, "time_scale": time_scale, "now": start, "size": size}, fault or []
    )
    from amzlake.emulator.server import EmulatorServer

    try:
        server = EmulatorServer(chosen, host=host, port=port)
    except OSError as e:
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    creds = server.state.world.credentials()
    info = {"base_url": server.base_url, "seed": chosen.seed, "time_scale": chosen.time_scale,
            "faults": len(chosen.faults), "credentials": creds}
    out = Console(highlight=False)
    if as_json:
        print(json.dumps(info), flush=True)
    else:
        out.print(f"[bold]amzlake emulator[/] listening on [cyan]{server.base_url}[/] (seed {chosen.seed}, "
                  f"time scale {chosen.time_scale:g}, {len(chosen.faults)} fault rule(s))")
        out.print(f"  LWA token URL      {server.base_url}/auth/o2/token")
        out.print(f"  LWA client id      {creds['lwa']['client_id']}")
        out.print(f"  LWA client secret  {creds['lwa']['client_secret']}")
        out.print(f"  Ads refresh token  {creds['ads']['refresh_token']}")
        for p in creds["ads"]["profiles"]:
            out.print(f"  Ads profile        {p['profile_id']}  {p['country_code']} {p['currency_code']} "
                      f"{p['timezone']}")
        for v in creds["vendor"]:
            out.print(f"  Vendor account     {v['selling_partner_id']}  marketplace {v['marketplace_id']} "
                      f"({v['country_code']})  refresh token {v['refresh_token']}")
        out.print(f"  Credentials JSON   {server.base_url}/_emulator/credentials")
        out.print("Ctrl-C stops it.")
        sys.stdout.flush()
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


@app.command(
    epilog=(
        "Examples:\n\n"
        "  amzlake demo\n\n"
        "  amzlake demo --dir /tmp/amzlake-demo --json\n\n"
        "  cd amzlake-demo && amzlake status"
    ),
)
def demo(
    folder: Annotated[Path, typer.Option("--dir", help="Where the demo keeps everything it makes.")]
    = Path("amzlake-demo"),
    as_json: JsonOption = False,
) -> None:
    """Run the pipeline on embedded defaults against the bundled Amazon emulator.

    Two Ads profiles in different time zones and a vendor account, the last 30 days of every
    default report: requested, waited for, downloaded into the raw zone, curated into Iceberg
    tables; then a summary of the tables and the TACoS of the last week.
    """
    from amzlake.demo import demo_json, print_demo, run_demo
    from amzlake.progress import configure_logging

    configure_logging()
    outcome = run_demo(folder.resolve(), live=False if as_json else None)
    if as_json:
        print(demo_json(outcome))
    else:
        print_demo(Console(highlight=False), outcome)
    if outcome.result.failed or outcome.job.quarantined:
        raise typer.Exit(1)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  amzlake init\n\n"
        "  amzlake init --path conf/amzlake.toml --force\n\n"
        "  AMZLAKE_CONFIG=conf/amzlake.toml amzlake run"
    ),
)
def init(
    path: Annotated[Path, typer.Option(help="Where to write the config.")] = Path("amzlake.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite the file if it exists.")] = False,
) -> None:
    """Write a commented starter config (amzlake.toml) that loads as it stands; edit it, then run."""
    from amzlake.config import load_config
    from amzlake.starter_config import write_starter_config

    written = write_starter_config(path, force=force)
    load_config(written, environ={})  # the starter must always load; fail loudly here if not
    Console(highlight=False).print(
        f"wrote {written}: fill in [lwa.default] and the refresh-token references, then `amzlake run`",
        markup=False,
    )


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="amzlake.toml to use (default: $AMZLAKE_CONFIG, else the "
                 "nearest amzlake.toml in this folder or a parent)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log every step.")]


def _ingest(config_path: Path | None, backfill: tuple[Any, Any] | None, as_json: bool,
            verbose: bool) -> None:
    import asyncio

    from amzlake.config import load_config
    from amzlake.ingest.pipeline import Ingestion, clock_for
    from amzlake.job import run_job
    from amzlake.progress import RunProgress, configure_logging
    from amzlake.summary import exit_code_for, print_run, run_json

    configure_logging(verbose)
    config = load_config(config_path)
    clock = clock_for(config)

    async def go() -> Any:
        ingestion = Ingestion.open(config, clock)
        progress = RunProgress(stats=ingestion.pool.stats, live=False if as_json else None)
        try:
            with progress:
                return await run_job(config, clock, backfill=backfill, listener=progress,
                                     on_start=progress.start, ingestion=ingestion)
        finally:
            await ingestion.aclose()

    job = asyncio.run(go())
    if as_json:
        print(json.dumps(run_json(job)))
    else:
        print_run(Console(highlight=False), job)
    code = exit_code_for(job)
    if code:
        raise typer.Exit(code)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  amzlake run\n\n"
        "  amzlake run --config /etc/amzlake/amzlake.toml --json\n\n"
        "Exit codes: 0 every slice fetched and curated (or still being made by Amazon), 1 some "
        "slices failed or documents were quarantined, 2 bad configuration or input, 3 credentials "
        "refused."
    ),
)
def run(config: ConfigOption = None, as_json: JsonOption = False, verbose: VerboseOption = False) -> None:
    """Ask Amazon for every report still needed, wait, download, and curate them into the lake.

    Downloads land in the raw zone; once none has arrived for the quiet period, the transform puts
    them into the curated Iceberg tables. Safe to run from cron at any frequency: a rerun resumes
    what an earlier one left (even after a crash) and never asks twice for a report still being made.
    """
    _ingest(config, None, as_json, verbose)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  amzlake backfill --from 2026-01-01 --to 2026-03-31\n\n"
        "Days older than Amazon keeps (Ads retention, vendor lookback) are left out with a note."
    ),
)
def backfill(
    from_: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First day.")],
    to: Annotated[datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="Last day.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Fetch every configured report for a range of past days (in slices as wide as Amazon allows)."""
    if to < from_:
        raise ConfigError(f"--to ({to.date()}) is before --from ({from_.date()})")
    _ingest(config, (from_.date(), to.date()), as_json, verbose)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  amzlake transform\n\n"
        "  amzlake transform --watch        # keep curating new downloads until Ctrl-C"
    ),
)
def transform(
    watch: Annotated[bool, typer.Option("--watch", help="Keep going: curate each burst of new "
                                        "downloads once it has been quiet for the quiet period.")]
    = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Curate every downloaded raw document not yet in the lake (the transform step alone)."""
    import asyncio
    import signal

    from amzlake.config import load_config
    from amzlake.ingest.pipeline import clock_for
    from amzlake.job import transformer_for
    from amzlake.job import watch as watch_loop
    from amzlake.progress import configure_logging
    from amzlake.storage.ledger import open_ledger
    from amzlake.storage.objects import open_store
    from amzlake.summary import transform_json

    configure_logging(verbose)
    cfg = load_config(config)
    clock = clock_for(cfg)
    ledger = open_ledger(cfg.storage.ledger_location)
    store = open_store(cfg.storage.raw_location)
    try:
        if watch:
            async def go() -> Any:
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
                return await watch_loop(cfg, ledger, store, clock, stop)

            results = asyncio.run(go())
        else:
            results = [transformer_for(cfg, ledger, store, clock).run()]
    finally:
        ledger.close()
    outcome = transform_json(results)
    if as_json:
        print(json.dumps(outcome))
    else:
        Console(highlight=False).print(
            f"curated {outcome['slices_curated']} slice(s) into {len(outcome['tables'])} table(s): "
            f"{outcome['rows_committed']} rows written, {outcome['rows_replaced']} replaced; "
            f"{len(outcome['quarantined'])} quarantined", markup=False)
        for q in outcome["quarantined"]:
            Console(highlight=False).print(f"  quarantined {q['raw_key']}: {q['reason']}", markup=False)
    if outcome["quarantined"]:
        raise typer.Exit(1)


@app.command(epilog="Examples:\n\n  amzlake status\n\n  amzlake status --json | jq '.[0]'")
def status(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Per account and report type: the last complete day, slices pending, failures with reasons."""
    from amzlake.config import load_config
    from amzlake.storage.ledger import open_ledger
    from amzlake.summary import print_status, status_json

    cfg = load_config(config)
    ledger = open_ledger(cfg.storage.ledger_location)
    try:
        summaries = ledger.summary()
    finally:
        ledger.close()
    if as_json:
        print(json.dumps(status_json(summaries)))
    else:
        # Piped output gets room for whole ids and report types; a terminal its own width.
        print_status(Console(highlight=False, width=None if sys.stdout.isatty() else 200), summaries)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  amzlake query \"SHOW TABLES\"\n\n"
        "  amzlake query \"SELECT report_date, currency, sum(cost) cost, sum(sales) sales FROM "
        "v_ads_daily GROUP BY ALL ORDER BY report_date DESC LIMIT 14\"\n\n"
        "  amzlake query \"SELECT * FROM v_tacos_daily_asin WHERE report_date >= current_date - 7\" "
        "--format csv --output tacos.csv\n\n"
        "  amzlake query \"FROM vendor_sales_by_asin\" --format parquet --output sales.parquet\n\n"
        "Every curated table is visible by its name; day-one views: v_ads_daily, "
        "v_vendor_daily_asin, v_tacos_daily_asin (sum money per currency: each row of them has "
        "one). A statement opens only the tables it names, and a filter on report_date or "
        "account_id reads only those files. A table shows its first 40 rows and how many there "
        "were. Exit codes: 0 done, 2 bad SQL, unknown table, missing lake files or bad "
        "configuration."
    ),
)
def query(
    sql: Annotated[str, typer.Argument(help="DuckDB SQL over the curated tables and views.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, csv, json or parquet.")]
    = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o",
                                                help="Write the result to this file.")] = None,
    config: ConfigOption = None,
) -> None:
    """Run SQL (DuckDB) over the curated lake: print a table, or write CSV, JSON or Parquet."""
    from amzlake.query_cli import QueryArgs, execute

    execute(QueryArgs(sql, fmt, output, config))


@app.command(
    epilog=(
        "Examples:\n\n"
        "  amzlake maintain\n\n"
        "  amzlake maintain --dry-run --json\n\n"
        "  amzlake maintain --table ads_sp_advertised_product_daily\n\n"
        "Compacts each table's (account, month) partitions that hold more files than their size "
        "needs (and every file of an earlier layout), rewrites the manifests, expires snapshots "
        "older than [maintenance] snapshot_retention (keeping min_snapshots), and removes files "
        "nothing references once older than orphan_age. `amzlake run` does the same at its end, "
        "at most once per [maintenance] every."
    ),
)
def maintain(
    config: ConfigOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be done; change "
                                          "nothing.")] = False,
    table: Annotated[list[str] | None, typer.Option("--table", "-t", help="Only this table "
                                                    "(repeatable).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Keep the lake small and fast: compact files, expire old snapshots, remove orphan files."""
    from amzlake.config import load_config
    from amzlake.lake.upkeep import maintain_configured, print_reports

    cfg = load_config(config)
    reports = maintain_configured(cfg, dry_run=dry_run, tables=table or None,
                                  progress=None if as_json else _print_maintenance_line)
    if as_json:
        print(json.dumps({"dry_run": dry_run, "tables": [r.as_json() for r in reports]}))
    else:
        print_reports(reports, dry_run=dry_run)


def _print_maintenance_line(report: Any) -> None:
    from amzlake.lake.upkeep import report_line

    print(report_line(report), flush=True)


aws_app = typer.Typer(
    name="aws", no_args_is_help=True, add_completion=False,
    help="The AWS runtime: the CDK stack (Step Functions, Lambda, Glue, S3, DynamoDB, SNS).")
app.add_typer(aws_app, name="aws")


def _context_pairs(pairs: list[str]) -> dict[str, str]:
    """KEY=VALUE strings as a dict (CDK context); ConfigError for one without '='."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"--context {pair!r}: must be KEY=VALUE, e.g. amzlake:config=aws.toml")
        out[key.strip()] = value
    return out


@aws_app.command(
    "synth",
    epilog=(
        "Examples:\n\n"
        "  amzlake aws synth --context amzlake:config=amzlake-aws.toml\n\n"
        "  amzlake aws synth --env prod --context amzlake:config=amzlake-aws.toml\n\n"
        "  amzlake aws synth --output build/cdk --context amzlake:config=aws.toml "
        "--context amzlake:maxPolls=60\n\n"
        "Deploy with the CDK CLI from the repository root (cdk.json runs the same app): "
        "npx aws-cdk@2 deploy -c amzlake:config=amzlake-aws.toml"
    ),
)
def aws_synth(
    output: Annotated[Path, typer.Option("--output", "-o", help="Cloud assembly folder.")]
    = Path("cdk.out"),
    context: Annotated[
        list[str] | None,
        typer.Option("--context", "-c", metavar="KEY=VALUE",
                     help="CDK context (repeatable): amzlake:config (required: a TOML or JSON "
                     "config path, or inline JSON), amzlake:stackName, amzlake:secretPrefix, "
                     "amzlake:maxConcurrency, amzlake:maxPolls, amzlake:glueWorkers."),
    ] = None,
    env: Annotated[str | None, typer.Option(
        "--env", help="Environment name (context amzlake:env, default dev): every physical "
        "name derives from it, so environments deploy side by side.")] = None,
    bundle: Annotated[bool, typer.Option(
        "--bundle/--no-bundle", help="Also build the Lambda and Glue code assets with uv "
        "(what a deploy needs); without it only the template is complete.")] = False,
) -> None:
    """Write the CloudFormation template of amzlake's AWS stack (checked by cdk-nag)."""
    ctx = _context_pairs(context or [])
    if env is not None:
        ctx["amzlake:env"] = env
    try:
        from amzlake.aws.app import build_app
    except ImportError as e:
        raise ConfigError(
            f"amzlake aws needs the infra extra (aws-cdk-lib, cdk-nag): {e}") from None
    # Absolute: the CDK runs in a Node process whose working folder may be another.
    the_app, stack = build_app(ctx, outdir=str(output.resolve()), bundle=bundle)
    try:
        the_app.synth()
    except RuntimeError as e:
        if "ValidationFailed" in str(e):
            raise AmzlakeError(f"cdk-nag found unacknowledged issues; see "
                               f"{output / 'validation-report.json'}") from None
        raise
    template = output / f"{stack.artifact_id}.template.json"
    Console(highlight=False).print(f"wrote {template}", markup=False)


def main() -> None:
    """Entry point: run the app, turning amzlake's errors into one line and an exit code."""
    try:
        app()
    except AmzlakeError as e:
        # Plain write: one line, never wrapped or styled, whatever the terminal.
        sys.stderr.write(f"amzlake: error: {e}\n")
        sys.exit(e.exit_code)
