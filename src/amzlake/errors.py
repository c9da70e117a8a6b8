"""The exception tree: every failure amzlake reports is one of these, mapped by the CLI to one line."""

from __future__ import annotations


class AmzlakeError(Exception):
    """Base of every error amzlake raises on purpose; `exit_code` is what the CLI exits with."""

    exit_code: int = 1


class ConfigError(AmzlakeError):
    """A configuration file, option or flag is invalid; nothing has run."""

    exit_code = 2


class ScenarioError(ConfigError):
    """An emulator scenario file or fault flag is invalid."""
