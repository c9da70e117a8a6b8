"""Credential references and providers: env, owner-only files, Secrets Manager (moto server)."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from amzlake.errors import CredentialsError
from amzlake.secrets import (
    CredentialChain,
    EnvProvider,
    FileProvider,
    SecretRef,
    SecretsManagerProvider,
    parse_ref,
)

SECRET = "amzn1.oa2-cs.v1.TOPSECRET-0123456789"
TOKEN = "Atzr|IwEBIREFRESH-TOKEN-VALUE"


# ---- References ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("env:LWA_SECRET", SecretRef("env", "LWA_SECRET")),
        (
            "file:/etc/amzlake/creds.toml#lwa.default.client_secret",
            SecretRef("file", "/etc/amzlake/creds.toml", "lwa.default.client_secret"),
        ),
        ("file:creds.json#ads", SecretRef("file", "creds.json", "ads")),
        (
            "secretsmanager:amzlake/lwa/default#client_secret",
            SecretRef("secretsmanager", "amzlake/lwa/default", "client_secret"),
        ),
        (
            "secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:amzlake-AbCdEf",
            SecretRef(
                "secretsmanager",
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:amzlake-AbCdEf",
            ),
        ),
    ],
)
def test_parse_ref_round_trips(text: str, ref: SecretRef):
    assert parse_ref(text) == ref
    assert str(ref) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SECRET, "must be a credential reference"),
        ("vault:x", "must be a credential reference"),
        ("env:", "must be a credential reference"),
        ("env:1BAD-NAME", "env:NAME"),
        ("env:A#b", "env:NAME"),
        ("file:/etc/creds.toml", "file:PATH#KEY"),
        ("secretsmanager:#key", "secretsmanager:NAME_OR_ARN"),
    ],
)
def test_bad_references_are_refused_without_echoing(text: str, expected: str):
    with pytest.raises(ValueError) as info:
        parse_ref(text)
    assert expected in str(info.value)
    assert SECRET not in str(info.value)


# ---- Environment --------------------------------------------------------------------------------


def test_env_provider_resolves_and_names_missing_variable():
    provider = EnvProvider({"LWA_SECRET": SECRET, "EMPTY": ""})
    assert provider.resolve(parse_ref("env:LWA_SECRET")).get_secret_value() == SECRET
    for name in ("MISSING", "EMPTY"):
        with pytest.raises(CredentialsError, match=f"credential env:{name}: .* is not set"):
            provider.resolve(parse_ref(f"env:{name}"))


# ---- Credentials file ---------------------------------------------------------------------------


def write_creds(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


TOML_CREDS = f'[lwa.default]\nclient_secret = "{SECRET}"\n[tokens]\nads = "{TOKEN}"\n'


def test_file_provider_reads_toml_and_json_with_dotted_keys(tmp_path: Path):
    write_creds(tmp_path / "creds.toml", TOML_CREDS)
    write_creds(tmp_path / "creds.json", json.dumps({"refresh_tokens": {"vendor.us": TOKEN}}))
    provider = FileProvider(tmp_path)
    toml_ref = parse_ref("file:creds.toml#lwa.default.client_secret")
    assert provider.resolve(toml_ref).get_secret_value() == SECRET
    assert (
        provider.resolve(parse_ref(f"file:{tmp_path}/creds.toml#tokens.ads")).get_secret_value()
        == TOKEN
    )
    # A key that itself holds a dot is found before it is read as a path.
    nested = json.dumps({"vendor.us": TOKEN, "vendor": {"us": "other"}})
    write_creds(tmp_path / "flat.json", nested)
    assert provider.resolve(parse_ref("file:flat.json#vendor.us")).get_secret_value() == TOKEN


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o660])
def test_file_readable_or_writable_by_others_is_refused(tmp_path: Path, mode: int):
    path = write_creds(tmp_path / "creds.toml", TOML_CREDS, mode)
    with pytest.raises(CredentialsError) as info:
        FileProvider(tmp_path).resolve(parse_ref("file:creds.toml#tokens.ads"))
    message = str(info.value)
    assert f"{path} is accessible by group or others (mode {mode:03o})" in message
    assert f"chmod 600 {path}" in message
    assert TOKEN not in message and SECRET not in message


def test_file_errors_name_the_reference_never_the_value(tmp_path: Path):
    write_creds(tmp_path / "creds.toml", TOML_CREDS)
    provider = FileProvider(tmp_path)
    with pytest.raises(
        CredentialsError, match=r"credential file:creds.toml#tokens.sp: no key 'tokens.sp'"
    ):
        provider.resolve(parse_ref("file:creds.toml#tokens.sp"))
    with pytest.raises(CredentialsError, match=r"not a non-empty string"):
        provider.resolve(parse_ref("file:creds.toml#tokens"))  # a table, not a string
    with pytest.raises(CredentialsError, match=r"does not exist"):
        provider.resolve(parse_ref("file:nope.toml#x"))
    # A file that does not parse: the error gives no line of it (which could hold a secret).
    write_creds(tmp_path / "broken.toml", f'ads = "{TOKEN}\n')
    with pytest.raises(CredentialsError) as info:
        provider.resolve(parse_ref("file:broken.toml#ads"))
    assert "cannot parse" in str(info.value) and TOKEN not in str(info.value)


def test_file_is_read_once_per_chain(tmp_path: Path):
    path = write_creds(tmp_path / "creds.toml", TOML_CREDS)
    provider = FileProvider(tmp_path)
    provider.resolve(parse_ref("file:creds.toml#tokens.ads"))
    path.unlink()
    assert (
        provider.resolve(parse_ref("file:creds.toml#lwa.default.client_secret")).get_secret_value()
        == SECRET
    )


# ---- Secrets Manager against moto in server mode -------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


class CountingClients:
    """A client factory for boto3 pointed at moto, counting get_secret_value calls."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.calls = 0
        self.regions: list[str | None] = []

    def __call__(self, region: str | None) -> Any:
        import boto3

        self.regions.append(region)
        client = boto3.client(
            "secretsmanager",
            region_name=region or "us-east-1",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        outer = self

        class Counted:
            def get_secret_value(self, **kwargs: Any) -> Any:
                outer.calls += 1
                return client.get_secret_value(**kwargs)

        return Counted()


def create_secret(endpoint: str, name: str, value: str, region: str = "us-east-1") -> str:
    import boto3

    client = boto3.client(
        "secretsmanager",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return client.create_secret(Name=name, SecretString=value)["ARN"]


def test_secrets_manager_one_json_secret_per_lwa_app(moto_endpoint: str):
    body = json.dumps(
        {"client_secret": SECRET, "refresh_tokens": {"ads": TOKEN, "vendor-us": TOKEN + "2"}}
    )
    create_secret(moto_endpoint, "amzlake/lwa/app-a", body)
    clients = CountingClients(moto_endpoint)
    provider = SecretsManagerProvider(clients)
    assert (
        provider.resolve(
            parse_ref("secretsmanager:amzlake/lwa/app-a#client_secret")
        ).get_secret_value()
        == SECRET
    )
    ads = provider.resolve(parse_ref("secretsmanager:amzlake/lwa/app-a#refresh_tokens.ads"))
    vendor = provider.resolve(
        parse_ref("secretsmanager:amzlake/lwa/app-a#refresh_tokens.vendor-us")
    )
    assert (ads.get_secret_value(), vendor.get_secret_value()) == (TOKEN, TOKEN + "2")
    assert clients.calls == 1  # one fetch per secret, however many keys are read


def test_secrets_manager_arn_gives_the_region_and_plain_secret(moto_endpoint: str):
    arn = create_secret(moto_endpoint, "amzlake/plain", TOKEN, region="eu-west-1")
    clients = CountingClients(moto_endpoint)
    value = SecretsManagerProvider(clients).resolve(parse_ref(f"secretsmanager:{arn}"))
    assert value.get_secret_value() == TOKEN
    assert clients.regions == ["eu-west-1"]


def test_secrets_manager_errors_name_the_reference(moto_endpoint: str):
    create_secret(moto_endpoint, "amzlake/lwa/app-b", json.dumps({"client_secret": SECRET}))
    create_secret(moto_endpoint, "amzlake/not-json", TOKEN)
    provider = SecretsManagerProvider(CountingClients(moto_endpoint))
    with pytest.raises(
        CredentialsError, match=r"amzlake/missing#x: Secrets Manager refused \(ResourceNotFound"
    ):
        provider.resolve(parse_ref("secretsmanager:amzlake/missing#x"))
    with pytest.raises(CredentialsError) as info:
        provider.resolve(parse_ref("secretsmanager:amzlake/lwa/app-b#refresh_tokens.ads"))
    assert "no key 'refresh_tokens.ads'" in str(info.value) and SECRET not in str(info.value)
    with pytest.raises(CredentialsError) as info:
        provider.resolve(parse_ref("secretsmanager:amzlake/not-json#ads"))
    assert "not a JSON object" in str(info.value) and TOKEN not in str(info.value)


# ---- The chain -----------------------------------------------------------------------------------


def test_chain_dispatches_by_scheme_and_never_logs_values(
    tmp_path: Path, moto_endpoint: str, caplog: pytest.LogCaptureFixture
):
    write_creds(tmp_path / "creds.toml", TOML_CREDS)
    create_secret(moto_endpoint, "amzlake/lwa/chain", json.dumps({"client_secret": SECRET}))
    chain = CredentialChain.default(
        base_dir=tmp_path,
        environ={"ADS_TOKEN": TOKEN},
        secrets_client_factory=CountingClients(moto_endpoint),
    )
    # amzlake's own loggers at DEBUG; botocore at INFO, since botocore's DEBUG output prints whole
    # response bodies (secret values included) and amzlake never turns it on.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="amzlake")
    values = [
        chain.resolve("env:ADS_TOKEN"),
        chain.resolve(parse_ref("file:creds.toml#tokens.ads")),
        chain.resolve("secretsmanager:amzlake/lwa/chain#client_secret"),
    ]
    assert [v.get_secret_value() for v in values] == [TOKEN, TOKEN, SECRET]
    for v in values:
        assert TOKEN not in str(v) and TOKEN not in repr(v) and SECRET not in repr(v)
    assert "resolved credential env:ADS_TOKEN" in caplog.text
    assert TOKEN not in caplog.text and SECRET not in caplog.text
    with pytest.raises(CredentialsError) as info:
        chain.resolve(SECRET)  # a pasted secret where a reference belongs
    assert SECRET not in str(info.value) and info.value.exit_code == 3


def test_chain_without_a_provider_for_the_scheme():
    with pytest.raises(CredentialsError, match="no provider for scheme 'secretsmanager'"):
        CredentialChain((EnvProvider({}),)).resolve("secretsmanager:x#y")


def test_config_references_resolve_through_the_chain(tmp_path: Path):
    from amzlake.config import load_config

    write_creds(tmp_path / "creds.toml", TOML_CREDS)
    (tmp_path / "amzlake.toml").write_text(
        '[lwa.default]\nclient_id = "amzn1.application-oa2-client.x"\n'
        'client_secret = "file:creds.toml#lwa.default.client_secret"\n'
        '[ads]\nrefresh_token = "env:ADS_TOKEN"\n',
        encoding="utf-8",
    )
    config = load_config(tmp_path / "amzlake.toml", environ={})
    chain = CredentialChain.default(base_dir=config.base_dir, environ={"ADS_TOKEN": TOKEN})
    assert chain.resolve(config.lwa["default"].client_secret).get_secret_value() == SECRET
    assert chain.resolve(config.ads.refresh_token).get_secret_value() == TOKEN  # type: ignore[arg-type]
    dumped = repr(config) + str(config.model_dump())
    assert SECRET not in dumped and TOKEN not in dumped


def test_core_modules_do_not_import_boto3():
    code = "import sys, amzlake.config, amzlake.secrets; sys.exit('boto3' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
