"""Login with Amazon: access tokens from a refresh token, cached and refreshed before they expire.

The refresh_token grant is a form POST to the region's token URL (ads-facts §1, spapi-facts §2);
tokens live an hour (`expires_in`). Amazon's own sample client caches a token until shortly
before `expires_in` runs out; we do the same with a margin, and refresh once more when an API
says the token has expired (Ads 401, SP-API 403). Concurrent callers share one refresh; a
TokenCache lets the short-lived providers of one process (Lambda invocations) share the token too.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from amzlake.errors import ApiCallError, AuthError, UnexpectedResponse
from amzlake.sources.http import ApiHttp, RetryPolicy, SystemTimer, Timeouts, Timer, lwa_error

log = logging.getLogger(__name__)

# LWA answers these (besides 429/5xx) when it is worth trying again later; Amazon's sample
# clients treat only server_error and temporarily_unavailable as retriable (spapi-facts §2).
RETRIABLE_LWA_ERRORS = frozenset({"server_error", "temporarily_unavailable"})


def client_id_hint(client_id: str) -> str:
    """The only part of a client id amzlake prints: its last four characters."""
    return f"...{client_id[-4:]}" if client_id else "(none)"


@dataclass
class TokenCache:
    """Access tokens kept beyond one provider's life: a Lambda container's next invocations make
    new clients, and this spares each of them a grant while the last token is still good.

    `entries` outlives the cache object (the caller keeps it: one dict per process); `now` is a
    clock every user of `entries` shares (wall-clock seconds, times the run's time scale).
    Keys are digests, so no refresh token is ever a key in memory dumps or logs.
    """

    entries: dict[str, tuple[SecretStr, float]]
    now: Callable[[], float]

    @staticmethod
    def key(token_url: str, client_id: str, refresh_token: SecretStr) -> str:
        blob = "\0".join((token_url, client_id, refresh_token.get_secret_value()))
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> tuple[SecretStr, float] | None:
        """(token, seconds it stays good) for `key`, if it is still good."""
        entry = self.entries.get(key)
        if entry is None:
            return None
        left = entry[1] - self.now()
        return (entry[0], left) if left > 0 else None

    def put(self, key: str, token: SecretStr, good_for: float) -> None:
        self.entries[key] = (token, self.now() + good_for)

    def forget(self, key: str, stale: SecretStr | None) -> None:
        """Drop `key`'s token if it is `stale` (an API refused it), or whatever it is if None."""
        entry = self.entries.get(key)
        if entry is not None and (stale is None or entry[0].get_secret_value()
                                  == stale.get_secret_value()):
            del self.entries[key]


class LwaTokenProvider:
    """Access tokens for one LWA app + refresh token; safe to share between concurrent callers."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        refresh_token: SecretStr,
        *,
        margin: float = 60.0,
        http: ApiHttp | None = None,
        timer: Timer | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        cache: TokenCache | None = None,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self._refresh_token = refresh_token
        self.margin = margin
        self._timer: Timer = timer or (http.timer if http is not None else SystemTimer())
        self._own_http = http is None
        self._http = http or ApiHttp(
            "lwa", error_parser=lwa_error, timer=self._timer,
            retry=retry or RetryPolicy(max_attempts=5, base=1.0, cap=30.0, max_elapsed=120.0),
            timeouts=timeouts or Timeouts(connect=10.0, read=30.0, write=30.0, pool=30.0),
        )
        self._token: SecretStr | None = None
        self._refresh_at = float("-inf")
        self._lock = asyncio.Lock()
        self.fetches = 0  # token grants asked of LWA
        self._cache = cache
        self._cache_key = TokenCache.key(token_url, client_id, refresh_token) if cache else ""

    def __repr__(self) -> str:
        hint = client_id_hint(self.client_id)
        return f"LwaTokenProvider(token_url={self.token_url!r}, client={hint})"

    async def aclose(self) -> None:
        """Close the HTTP client if this provider made it."""
        if self._own_http:
            await self._http.aclose()

    def _fresh(self) -> bool:
        return self._token is not None and self._timer.now() < self._refresh_at

    async def token(self) -> SecretStr:
        """A valid access token: the cached one, or a new one shortly before it would expire."""
        if self._fresh():
            assert self._token is not None
            return self._token
        async with self._lock:
            if self._fresh():
                assert self._token is not None
                return self._token
            cached = self._cache.get(self._cache_key) if self._cache else None
            if cached is not None:
                self._token, good_for = cached
                self._refresh_at = self._timer.now() + good_for
                return self._token
            return await self._fetch()

    async def refresh(self, stale: SecretStr | None = None) -> SecretStr:
        """A new access token after an API refused `stale`; if another caller already replaced
        `stale` meanwhile, that newer token (one refresh for everyone)."""
        async with self._lock:
            current = self._token
            if (current is not None and stale is not None and self._fresh()
                    and current.get_secret_value() != stale.get_secret_value()):
                return current
            if self._cache is not None:
                self._cache.forget(self._cache_key, stale)
            return await self._fetch()

    def _scrub(self, text: str) -> str:
        for secret in (self._secret.get_secret_value(), self._refresh_token.get_secret_value()):
            if secret:
                text = text.replace(secret, "***")
        return text

    async def _fetch(self) -> SecretStr:
        """Ask LWA for a new access token (the caller holds the lock)."""
        self.fetches += 1
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self._refresh_token.get_secret_value(),
            "client_id": self.client_id,
            "client_secret": self._secret.get_secret_value(),
        }
        who = f"LWA token request for client {client_id_hint(self.client_id)}"
        try:
            response = await self._http.call(
                "token", "POST", self.token_url, data=form,
                headers={"Accept": "application/json"},
            )
        except AuthError as e:
            raise AuthError(self._scrub(f"{who} refused: {e}")) from None
        except ApiCallError as e:
            if e.status is not None and 400 <= e.status < 500 and e.status != 429:
                # invalid_client, invalid_grant, unauthorized_client, ...: fix the credentials.
                detail = f"{e.code}: {e.amazon_message}" if e.amazon_message else f"{e.code}"
                raise AuthError(self._scrub(f"{who} refused ({detail})")) from None
            raise type(e)(self._scrub(f"{who} failed: {e}"), operation=e.operation,
                          status=e.status, code=e.code, amazon_message=e.amazon_message) from None
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not body.get("access_token"):
            raise UnexpectedResponse(f"{who}: the answer holds no access_token",
                                     operation="lwa.token", status=response.status_code)
        try:
            expires_in = float(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            expires_in = 3600.0
        # Keep a margin before expiry, but never so much that a short-lived token is never used.
        margin = min(self.margin, expires_in / 4)
        self._token = SecretStr(str(body["access_token"]))
        self._refresh_at = self._timer.now() + expires_in - margin
        if self._cache is not None:
            self._cache.put(self._cache_key, self._token, expires_in - margin)
        log.debug("%s: new access token valid for %.0fs", who, expires_in)
        return self._token
