"""Credential references and the provider chain that resolves them to SecretStr values.

The config never holds a secret, only a *reference* to where one lives:

- `env:NAME`                        the environment variable NAME
- `file:PATH#KEY`                   KEY in a TOML or JSON credentials file that only its owner can
                                    read (a relative PATH is relative to the config file's folder;
                                    KEY may be dotted, `lwa.default.client_secret`, into tables)
- `secretsmanager:ID#KEY`           KEY of the JSON secret ID (a name or an ARN) in AWS Secrets
                                    Manager; without `#KEY` the whole secret string

Resolution goes through a chain of providers, one per scheme, in that order (environment, file,
Secrets Manager); a chain caches what it read: a file is parsed and a secret fetched once a run.
Errors name the reference and the reason, never a value; values only ever leave as SecretStr.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import SecretStr

from amzlake.errors import CredentialsError

log = logging.getLogger(__name__)

SCHEMES: tuple[str, ...] = ("env", "file", "secretsmanager")
REFERENCE_SYNTAX = "env:NAME, file:PATH#KEY or secretsmanager:NAME_OR_ARN[#KEY]"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A Secrets Manager ARN: arn:aws:secretsmanager:<region>:<account>:secret:<name>
_ARN_REGION = re.compile(r"^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):")


@dataclass(frozen=True)
class SecretRef:
    """Where a secret lives: a scheme, a target (variable, file or secret id), an optional key."""

    scheme: str
    target: str
    key: str | None = None

    def __str__(self) -> str:
        return f"{self.scheme}:{self.target}" + (f"#{self.key}" if self.key else "")


def parse_ref(text: str) -> SecretRef:
    """The reference `text` names; ValueError (never echoing `text`) when it is not one."""
    # The message never repeats `text`: when it is not a reference it may be a pasted secret.
    bad = f"must be a credential reference ({REFERENCE_SYNTAX}); inline secrets are not accepted"
    if not isinstance(text, str):
        raise ValueError(bad)
    scheme, sep, rest = text.strip().partition(":")
    if not sep or scheme not in SCHEMES or not rest:
        raise ValueError(bad)
    target, _, key = rest.partition("#")
    if scheme == "env":
        if key or not _ENV_NAME.match(target):
            raise ValueError("env: reference must be env:NAME with NAME a valid variable name")
        return SecretRef("env", target)
    if scheme == "file":
        if not target or not key:
            raise ValueError("file: reference must be file:PATH#KEY (which key of the file)")
        return SecretRef("file", target, key)
    if not target:
        raise ValueError("secretsmanager: reference must be secretsmanager:NAME_OR_ARN[#KEY]")
    return SecretRef("secretsmanager", target, key or None)


def _lookup(data: Any, key: str) -> Any:
    """The value under `key` in `data`: the exact key first, else a dotted path into tables."""
    if isinstance(data, Mapping) and key in data:
        return data[key]
    node = data
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


def _as_secret(value: Any, ref: SecretRef) -> SecretStr:
    if not isinstance(value, str) or not value:
        raise CredentialsError(f"credential {ref}: the value is not a non-empty string")
    return SecretStr(value)


class SecretProvider(Protocol):
    """Resolves references of one scheme."""

    scheme: str

    def resolve(self, ref: SecretRef) -> SecretStr:
        """The secret `ref` names, or CredentialsError."""
        ...


@dataclass
class EnvProvider:
    """`env:NAME`: an environment variable (an injectable mapping, os.environ by default)."""

    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    scheme: str = "env"

    def resolve(self, ref: SecretRef) -> SecretStr:
        """The variable's value; CredentialsError when it is unset or empty."""
        value = self.environ.get(ref.target)
        if not value:
            raise CredentialsError(
                f"credential {ref}: environment variable {ref.target} is not set"
            )
        return SecretStr(value)


def check_owner_only(path: Path) -> None:
    """Nothing, when only the owner may read or write `path`; CredentialsError otherwise."""
    if os.name != "posix":
        return  # POSIX modes mean nothing on Windows; its ACLs are out of scope here.
    st = path.stat()
    # Like ssh with private keys: any group/other permission is refused, since a group-writable
    # file lets someone else swap the secret as surely as a readable one leaks it.
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(
            f"credentials file {path} is accessible by group or others (mode "
            f"{stat.S_IMODE(st.st_mode):03o}); run: chmod 600 {path}"
        )
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise CredentialsError(f"credentials file {path} is not owned by the current user")


@dataclass
class FileProvider:
    """`file:PATH#KEY`: a TOML or JSON (by suffix) file that only its owner can read."""

    base_dir: Path = field(default_factory=Path.cwd)
    scheme: str = "file"
    _cache: dict[Path, Any] = field(default_factory=dict, repr=False)

    def _path(self, target: str) -> Path:
        path = Path(target).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def _load(self, ref: SecretRef) -> Any:
        path = self._path(ref.target)
        if path in self._cache:
            return self._cache[path]
        if not path.is_file():
            raise CredentialsError(f"credential {ref}: credentials file {path} does not exist")
        check_owner_only(path)
        raw = path.read_bytes()
        try:
            data = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            # The parser's message can quote a line of the file; give its position only.
            where = f" (line {e.lineno})" if isinstance(e, json.JSONDecodeError) else ""
            raise CredentialsError(f"credential {ref}: cannot parse {path}{where}") from None
        self._cache[path] = data
        return data

    def resolve(self, ref: SecretRef) -> SecretStr:
        """The key's value; CredentialsError for a missing, unsafe or unparsable file or key."""
        data = self._load(ref)
        try:
            value = _lookup(data, ref.key or "")
        except KeyError:
            raise CredentialsError(
                f"credential {ref}: no key {ref.key!r} in {self._path(ref.target)}"
            ) from None
        return _as_secret(value, ref)


SecretsClientFactory = Callable[[str | None], Any]


def _boto3_client(region: str | None) -> Any:
    # boto3 only when a secretsmanager: reference is resolved: the core runs without it.
    try:
        import boto3
    except ImportError:
        raise CredentialsError(
            "secretsmanager: references need boto3; install amzlake with the aws extra"
        ) from None
    return boto3.client("secretsmanager", region_name=region)


@dataclass
class SecretsManagerProvider:
    """`secretsmanager:ID#KEY`: a JSON secret in AWS Secrets Manager, fetched once per secret id.

    One secret per LWA app holds its `client_secret` and refresh tokens, e.g.
    `{"client_secret": "...", "refresh_tokens": {"ads": "Atzr|...", "vendor-us": "Atzr|..."}}`,
    referenced as `secretsmanager:amzlake/lwa/default#refresh_tokens.ads`. The region comes from an
    ARN, else from boto3's usual settings (AWS_REGION, profile); `client_factory` lets tests and the
    AWS runtime supply their own client (endpoint, credentials).
    """

    client_factory: SecretsClientFactory = _boto3_client
    scheme: str = "secretsmanager"
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def _fetch(self, ref: SecretRef) -> Any:
        if ref.target in self._cache:
            return self._cache[ref.target]
        match = _ARN_REGION.match(ref.target)
        client = self.client_factory(match.group(1) if match else None)
        try:
            answer = client.get_secret_value(SecretId=ref.target)
        except Exception as e:  # botocore's errors; imported lazily, so caught broadly
            code = getattr(e, "response", {}).get("Error", {}).get("Code", type(e).__name__)
            raise CredentialsError(f"credential {ref}: Secrets Manager refused ({code})") from None
        text = answer.get("SecretString")
        if text is None:
            raise CredentialsError(f"credential {ref}: the secret has no SecretString")
        if ref.key is None:
            value: Any = text
        else:
            try:
                value = json.loads(text)
            except ValueError:
                raise CredentialsError(
                    f"credential {ref}: the secret is not a JSON object"
                ) from None
        self._cache[ref.target] = value
        return value

    def resolve(self, ref: SecretRef) -> SecretStr:
        """The secret (or its key) as SecretStr; CredentialsError naming the reference otherwise."""
        data = self._fetch(ref)
        if ref.key is None:
            return _as_secret(data, ref)
        try:
            return _as_secret(_lookup(data, ref.key), ref)
        except KeyError:
            raise CredentialsError(f"credential {ref}: the secret has no key {ref.key!r}") from None


@dataclass
class CredentialChain:
    """The provider chain: each reference goes to the provider of its scheme."""

    providers: tuple[SecretProvider, ...]

    @classmethod
    def default(
        cls,
        *,
        base_dir: Path | None = None,
        environ: Mapping[str, str] | None = None,
        secrets_client_factory: SecretsClientFactory | None = None,
    ) -> CredentialChain:
        """The standard chain: environment, credentials file, AWS Secrets Manager."""
        return cls(
            (
                EnvProvider(environ if environ is not None else os.environ),
                FileProvider(base_dir or Path.cwd()),
                SecretsManagerProvider(secrets_client_factory or _boto3_client),
            )
        )

    def resolve(self, ref: SecretRef | str) -> SecretStr:
        """The secret `ref` names; CredentialsError naming the reference when it cannot be had."""
        if isinstance(ref, str):
            try:
                ref = parse_ref(ref)
            except ValueError as e:
                raise CredentialsError(f"credential reference: {e}") from None
        for provider in self.providers:
            if provider.scheme == ref.scheme:
                value = provider.resolve(ref)
                log.debug("resolved credential %s", ref)
                return value
        raise CredentialsError(f"credential {ref}: no provider for scheme {ref.scheme!r}")
