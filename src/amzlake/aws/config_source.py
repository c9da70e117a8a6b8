"""Where a Lambda finds amzlake's configuration: the environment, or a TOML file in S3.

- `AMZLAKE_CONFIG_JSON`: the configuration as JSON (what the CDK stack sets);
- `AMZLAKE_CONFIG_S3`: s3://bucket/key of an amzlake.toml (read with the function's role).

`AMZLAKE_<SECTION>__<KEY>` overrides apply as for `amzlake run` (amzlake.config). A Lambda has no
lasting disk, so the raw zone must be s3:// and the ledger dynamodb://. Secrets stay references
(`secretsmanager:...`), resolved by the credential chain when a client first needs them.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from amzlake.config import AmzlakeConfig, parse_config
from amzlake.errors import ConfigError

ENV_CONFIG_JSON = "AMZLAKE_CONFIG_JSON"
ENV_CONFIG_S3 = "AMZLAKE_CONFIG_S3"
# Lambda's only writable folder: relative paths of the config resolve under it.
LAMBDA_BASE_DIR = Path("/tmp/amzlake")


def _read_s3(url: str) -> bytes:
    """The bytes of the object at s3://bucket/key (AWS_ENDPOINT_URL honoured by boto3)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise ConfigError(f"{ENV_CONFIG_S3}={url!r}: must be s3://BUCKET/KEY")
    try:
        return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except (ClientError, BotoCoreError) as e:
        raise ConfigError(f"{ENV_CONFIG_S3}={url}: cannot read the config: {e}") from None


def config_data(environ: Mapping[str, str]) -> tuple[dict[str, Any], str]:
    """The raw configuration tables from the environment, and where they came from."""
    text = environ.get(ENV_CONFIG_JSON)
    if text:
        try:
            data = json.loads(text)
        except ValueError as e:
            raise ConfigError(f"{ENV_CONFIG_JSON}: not valid JSON ({e.__class__.__name__} "
                              f"at position {getattr(e, 'pos', '?')})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{ENV_CONFIG_JSON}: must be a JSON object")
        return data, ENV_CONFIG_JSON
    url = environ.get(ENV_CONFIG_S3)
    if url:
        try:
            return tomllib.loads(_read_s3(url).decode("utf-8")), url
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{url}: not valid TOML: {e}") from None
    raise ConfigError(f"no configuration: set {ENV_CONFIG_JSON} (JSON) or {ENV_CONFIG_S3} "
                      "(s3://bucket/key of an amzlake.toml)")


def check_cloud_storage(config: AmzlakeConfig, origin: str) -> AmzlakeConfig:
    """`config`, if its raw zone is in S3 and its ledger in DynamoDB (else ConfigError)."""
    if not config.storage.raw_location.startswith("s3://"):
        raise ConfigError(f"{origin}: storage.raw must be s3://BUCKET/PREFIX in the AWS runtime")
    if not config.storage.ledger_location.startswith("dynamodb://"):
        raise ConfigError(f"{origin}: storage.ledger must be dynamodb://TABLE in the AWS runtime")
    return config


def load_lambda_config(environ: Mapping[str, str] | None = None) -> AmzlakeConfig:
    """The validated configuration a handler runs with (env overrides applied)."""
    env = os.environ if environ is None else environ
    data, origin = config_data(env)
    config = parse_config(data, base_dir=LAMBDA_BASE_DIR, environ=env, origin=origin)
    return check_cloud_storage(config, origin)
