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
        self.why = why
        detail = f": {why}" if why else ""
        super().__init__(f"slice {slice_key}: cannot go from {from_state} to {to_state}{detail}")

    def __reduce__(self) -> tuple[type, tuple[str, str, str, str]]:
        # Rebuilt from its fields, so it crosses process pools (pickle) intact.
        return (type(self), (self.slice_key, self.from_state, self.to_state, self.why))


class DocumentCorrupt(AmzlakeError):
    """A downloaded report document is truncated, corrupt or not the size announced."""


# ---- Calls to Amazon's APIs (sources/) ----------------------------------------------------------
# Messages name the operation, the HTTP status and Amazon's own code and message; they never hold an
# access token, a refresh token, a client secret or a presigned URL's query string.


class AuthError(AmzlakeError):
    """LWA refused the app or the refresh token, or an API refused a freshly refreshed token."""

    exit_code = 3


class ApiCallError(AmzlakeError):
    """A call to an Amazon API that did not succeed; `operation` names it (e.g. spapi.getReport)."""

    def __init__(self, message: str, *, operation: str, status: int | None = None,
                 code: str | None = None, amazon_message: str | None = None) -> None:
        super().__init__(message)
        self.operation = operation
        self.status = status
        self.code = code
        self.amazon_message = amazon_message


class ThrottledError(ApiCallError):
    """Amazon kept answering 429 until the retry budget ran out."""


class RemoteError(ApiCallError):
    """Amazon kept failing (5xx) or could not be reached, until the retry budget ran out."""


class RequestTimeout(RemoteError):
    """Every attempt timed out (connect, read, write or pool timeout)."""


class OutcomeUnknown(RemoteError):
    """A non-idempotent call (createReport) was sent but its answer was lost: it may have happened.

    Not retried blindly: the caller looks the report up (getReports) before asking again.
    """


class ApiRequestError(ApiCallError):
    """Amazon refused the request itself (a 4xx other than 429): retrying it as is cannot help."""


class NotFoundError(ApiRequestError):
    """The report, document or profile does not exist (HTTP 404)."""


class UrlExpired(ApiRequestError):
    """A document URL is no longer valid; ask for the report or document again for a new one."""


class UnexpectedResponse(ApiCallError):
    """Amazon answered something amzlake does not understand (an unknown status, a bad body)."""


class DocumentUnparseable(AmzlakeError):
    """A stored raw document cannot be turned into rows: corrupt or truncated gzip, bad JSON, or a
    shape or value the report's schema does not allow. `reason` says what, for a person to act on;
    the transform quarantines the document and goes on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (type(self), (self.reason,))
