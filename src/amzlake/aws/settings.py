"""What the CDK stack is told (CDK context) and the amzlake config it ships, checked at synth time.

Pure: no CDK, no AWS. Context keys (cdk.json, `cdk -c key=value`, `amzlake aws synth --context`):

  amzlake:config          the amzlake config: a TOML or JSON file path, or inline JSON (required).
                          Reports and accounts live here; [storage] and [notify] are the stack's.
  amzlake:env             the environment's name (default dev; `amzlake aws synth --env NAME`):
                          every physical name is derived from it (see StackSettings), so two
                          environments deploy side by side in one account and region
  amzlake:stackName       the stack's name (default Amzlake-<env>)
  amzlake:secretPrefix    the config names the stack's secrets <prefix>/lwa/<app> (default
                          amzlake); the stack ships them to the code as its own secrets' ARNs
  amzlake:maxConcurrency  slices fetched at once by the ingest Map (default: [run] concurrency)
  amzlake:maxPolls        status checks per slice in one run before it is left to the next run
  amzlake:glueWorkers     Glue G.1X workers (default 2)
  amzlake:rawInfrequentAccessDays  days before raw objects move to S3 Standard-IA (default 30)
  amzlake:encryptDataCatalog  true: encrypt the account's Glue Data Catalog in this region with
                          the stack's key (account-wide; off by default, see the README)
  amzlake:lakeFormationGrants  true: grant the reader role Lake Formation SELECT on the curated
                          tables (for accounts whose catalog Lake Formation governs; off)
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from amzlake.config import AmzlakeConfig, parse_config
from amzlake.errors import ConfigError

CONTEXT_PREFIX = "amzlake:"
DEFAULT_ENV = "dev"
STACK_NAME_PREFIX = "Amzlake"
DEFAULT_SECRET_PREFIX = "amzlake"
RAW_PREFIX = (
    "raw"  # the raw zone is s3://<raw bucket>/raw; quarantine records go under raw/quarantine
)
LAMBDA_LAKE_DIR = "/tmp/amzlake"  # Lambda's only writable folder; the handlers keep no lake there
# Lambda allows 4 KB of environment in all; the config shares it with a few short variables.
MAX_CONFIG_JSON = 3000
# A config's storage placeholders while it is validated at synth time (the real names are tokens).
_PLACEHOLDER_STORAGE = {
    "raw": "s3://placeholder-raw-bucket/raw",
    "ledger": "dynamodb://placeholder",
    "lake": LAMBDA_LAKE_DIR,
}


# Lowercase, so one name fits S3, Glue, Athena and CloudWatch rules alike; short, since it goes
# into names with their own limits (a Glue security configuration's 255, an alarm's 255, ...).
_ENV_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
MAX_ENV_LENGTH = 20


def check_env_name(env: str) -> str:
    """`env` if it can be part of every physical name; ConfigError otherwise."""
    if len(env) > MAX_ENV_LENGTH or not _ENV_NAME.match(env):
        raise ConfigError(
            f"context amzlake:env: {env!r} must be lowercase letters, digits and single hyphens, "
            f"starting with a letter, at most {MAX_ENV_LENGTH} characters (e.g. prod, eu-test)"
        )
    return env


@dataclass(frozen=True)
class StackSettings:
    """Everything the stack is built from.

    Every physical name is derived from `env` (the properties below); what has no name here
    (buckets, tables, functions, roles, the topic, the queue, the LWA secrets) is named by
    CloudFormation, uniquely per stack and per deployment.
    """

    config: dict[str, Any]  # the user's amzlake config as JSON-able data, storage/notify removed
    env: str = DEFAULT_ENV
    stack_name: str = ""  # default Amzlake-<env>
    secret_prefix: str = DEFAULT_SECRET_PREFIX
    max_concurrency: int = 8
    max_polls: int = 40
    glue_workers: int = 2
    raw_ia_days: int = 30
    encrypt_data_catalog: bool = False
    lake_formation_grants: bool = False

    def __post_init__(self) -> None:
        check_env_name(self.env)
        if not self.stack_name:
            object.__setattr__(self, "stack_name", f"{STACK_NAME_PREFIX}-{self.env}")

    @property
    def prefix(self) -> str:
        """amzlake-<env>: the start of the environment's physical names."""
        return f"amzlake-{self.env}"

    @property
    def lwa_apps(self) -> tuple[str, ...]:
        """The LWA apps the config names (one Secrets Manager secret each)."""
        return tuple(sorted(self.config.get("lwa", {})))

    @property
    def glue_database(self) -> str:
        """The Glue database (Iceberg namespace) of the curated tables: amzlake_<env>
        (underscores: Athena reads a hyphen in a database name only when quoted)."""
        return f"amzlake_{self.env.replace('-', '_')}"

    @property
    def ingest_machine_name(self) -> str:
        """The ingest state machine's name."""
        return f"{self.prefix}-ingest"

    @property
    def transform_machine_name(self) -> str:
        """The transform state machine's name."""
        return f"{self.prefix}-transform"

    @property
    def glue_job_name(self) -> str:
        """The Glue transform job's name."""
        return f"{self.prefix}-transform"

    @property
    def glue_security_configuration_name(self) -> str:
        """The Glue security configuration's name."""
        return f"{self.prefix}-glue"

    @property
    def key_alias(self) -> str:
        """The KMS key's alias."""
        return f"alias/{self.prefix}"

    @property
    def schedule_name(self) -> str:
        """The EventBridge Scheduler schedule that starts the ingest."""
        return f"{self.prefix}-ingest"

    @property
    def metric_namespace(self) -> str:
        """The CloudWatch namespace of the environment's own metrics."""
        return f"amzlake/{self.env}"

    @property
    def quarantine_log_group(self) -> str:
        """The log group of quarantine records (EventBridge log targets need /aws/events/)."""
        return f"/aws/events/{self.prefix}-quarantine"

    def alarm_name(self, what: str) -> str:
        """The name of one of the environment's alarms."""
        return f"{self.prefix}-{what}"

    def secret_reference(self, app: str) -> str:
        """How the config names one LWA app's secret (secretsmanager:<this>#<key>); the stack
        replaces it with its own secret's ARN in the config it ships."""
        return f"{self.secret_prefix}/lwa/{app}"


def _jsonable(value: Any) -> Any:
    """TOML values as JSON: dates and times as ISO text, durations in seconds."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


def read_config_source(source: Any, base_dir: Path | None = None) -> dict[str, Any]:
    """The config data named by the amzlake:config context: a dict, inline JSON or a file path."""
    if isinstance(source, Mapping):
        return _jsonable(source)
    if not isinstance(source, str) or not source.strip():
        raise ConfigError(
            "context amzlake:config: missing; pass -c amzlake:config=PATH "
            "(an amzlake TOML or JSON file) or inline JSON"
        )
    text = source.strip()
    if text.startswith("{"):
        try:
            return _jsonable(json.loads(text))
        except ValueError as e:
            raise ConfigError(f"context amzlake:config: inline JSON is not valid: {e}") from None
    path = Path(text).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        raise ConfigError(f"context amzlake:config: file not found: {path}")
    raw = path.read_text(encoding="utf-8")
    try:
        data = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw)
    except (ValueError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"context amzlake:config: {path} does not parse: {e}") from None
    return _jsonable(data)


def _secret_refs(config: AmzlakeConfig) -> Iterator[tuple[str, Any]]:
    """(dotted field, SecretRef) for every credential reference in `config`."""
    for name, app in config.lwa.items():
        yield f"lwa.{name}.client_secret", app.client_secret
    if config.ads.enabled and config.ads.refresh_token is not None:
        yield "ads.refresh_token", config.ads.refresh_token
    if config.vendor.enabled:
        for i, account in enumerate(config.vendor.accounts):
            yield f"vendor.accounts[{i}].refresh_token", account.refresh_token


def check_config(data: Mapping[str, Any], secret_prefix: str) -> AmzlakeConfig:
    """The validated config; ConfigError unless every secret is in one of the stack's secrets."""
    shipped = {k: v for k, v in data.items() if k not in ("storage", "notify")}
    config = parse_config(
        {**shipped, "storage": _PLACEHOLDER_STORAGE}, environ={}, origin="context amzlake:config"
    )
    if not config.lwa:
        raise ConfigError("context amzlake:config: needs at least one [lwa.<name>] app")
    names = {f"{secret_prefix}/lwa/{app}" for app in config.lwa}
    for where, ref in _secret_refs(config):
        if ref.scheme != "secretsmanager" or ref.target not in names or not ref.key:
            raise ConfigError(
                f"context amzlake:config: {where} must be secretsmanager:<name>#<key> with <name> "
                f"one of the stack's secrets ({', '.join(sorted(names))}); Lambda and Glue have "
                f"no env or file credentials"
            )
    return config


# The longest ARN a secret named by CloudFormation can have: partition, region, account, a name of
# the logical id plus 12 random characters, and Secrets Manager's own 7-character suffix.
_WORST_SECRET_ARN = "x" * 150


def ship_secret_refs(data: Any, targets: Mapping[str, str]) -> Any:
    """`data` with every `secretsmanager:<reference>[#key]` whose reference is a key of `targets`
    pointing at its target instead (the stack's secret ARN)."""
    if isinstance(data, Mapping):
        return {k: ship_secret_refs(v, targets) for k, v in data.items()}
    if isinstance(data, list):
        return [ship_secret_refs(v, targets) for v in data]
    if isinstance(data, str) and data.startswith("secretsmanager:"):
        ref, sep, key = data.removeprefix("secretsmanager:").partition("#")
        if ref in targets:
            return f"secretsmanager:{targets[ref]}{sep}{key}"
    return data


def shipped_config_size(data: Mapping[str, Any], references: Sequence[str]) -> int:
    """Bytes the config takes in a Lambda's environment once its secret references are ARNs."""
    shipped = ship_secret_refs(data, dict.fromkeys(references, _WORST_SECRET_ARN))
    return len(json.dumps(shipped, separators=(",", ":")))


def default_max_polls(config: AmzlakeConfig) -> int:
    """Enough status checks to wait out [run] max_wait at poll_max spacing after the ramp-up."""
    longest = max([config.run.max_wait_for(s, "") for s in ("ads", "vendor")])
    return max(1, math.ceil(longest / config.run.poll_max) + 10)


def settings_from_context(
    context: Mapping[str, Any], base_dir: Path | None = None
) -> StackSettings:
    """The stack's settings from CDK context values (strings when given on a command line)."""

    def flag(key: str) -> bool:
        raw = context.get(CONTEXT_PREFIX + key)
        if raw is None or isinstance(raw, bool):
            return bool(raw)
        text = str(raw).strip().lower()
        if text not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"context amzlake:{key}: {raw!r} is not true or false")
        return text in ("true", "1", "yes")

    def number(key: str, default: int, low: int, high: int) -> int:
        raw = context.get(CONTEXT_PREFIX + key)
        if raw is None:
            return default
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"context amzlake:{key}: not a whole number: {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"context amzlake:{key}: {value} not in {low}..{high}")
        return value

    data = read_config_source(context.get(CONTEXT_PREFIX + "config"), base_dir)
    prefix = str(context.get(CONTEXT_PREFIX + "secretPrefix") or DEFAULT_SECRET_PREFIX).strip("/")
    config = check_config(data, prefix)
    shipped = {k: v for k, v in data.items() if k not in ("storage", "notify")}
    references = [f"{prefix}/lwa/{app}" for app in config.lwa]
    if shipped_config_size(shipped, references) > MAX_CONFIG_JSON:
        raise ConfigError(
            f"context amzlake:config: more than {MAX_CONFIG_JSON} bytes as JSON "
            "(Lambda environments hold 4 KB); leave defaults out of it"
        )
    return StackSettings(
        config=shipped,
        env=check_env_name(str(context.get(CONTEXT_PREFIX + "env") or DEFAULT_ENV)),
        stack_name=str(context.get(CONTEXT_PREFIX + "stackName") or ""),
        secret_prefix=prefix,
        # The Lambdas share Amazon's rate limits (their limiter is per invocation), so the
        # concurrency stays near [run] concurrency rather than the Map's 10,000.
        max_concurrency=number("maxConcurrency", config.run.concurrency, 1, 256),
        max_polls=number("maxPolls", default_max_polls(config), 1, 1000),
        glue_workers=number("glueWorkers", 2, 2, 100),
        raw_ia_days=number("rawInfrequentAccessDays", 30, 30, 3650),
        encrypt_data_catalog=flag("encryptDataCatalog"),
        lake_formation_grants=flag("lakeFormationGrants"),
    )
