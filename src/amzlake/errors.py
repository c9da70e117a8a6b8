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


class CredentialsError(AmzlakeError):
    """A credential reference cannot be resolved or its store is unsafe; names the reference, never
    the value."""

    exit_code = 3


class StorageError(AmzlakeError):
    """The raw zone or the ledger could not be read or written (the message names where)."""


class StaleEntry(StorageError):
    """A compare-and-set ledger update lost: someone else changed the slice since it was read."""


class InvalidTransition(AmzlakeError):
    """A slice was asked to move between two ledger states that the state machine does not link."""

    def __init__(self, slice_key: str, from_state: str, to_state: str, why: str = "") -> None:
        self.slice_key = slice_key
        self.from_state = from_state
        self.to_state = to_state
        detail = f": {why}" if why else ""
        super().__init__(f"slice {slice_key}: cannot go from {from_state} to {to_state}{detail}")


class DocumentCorrupt(AmzlakeError):
    """A downloaded report document is truncated, corrupt or not the size announced."""
