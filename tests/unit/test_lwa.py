"""LWA access tokens: cached, refreshed before expiry and on an expired answer, shared, secret."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from amzlake.errors import AuthError, RemoteError
from amzlake.sources.http import ApiHttp, RetryPolicy, TokenAuth, lwa_error, spapi_error
from amzlake.sources.lwa import LwaTokenProvider, TokenCache

CLIENT_ID = "amzn1.application-oa2-client.0123456789abcdefWXYZ"
CLIENT_SECRET = "amzn1.oa2-cs.v1.very-secret-client-secret"
REFRESH_TOKEN = "Atzr|refresh-token-that-must-stay-secret"
TOKEN_URL = "https://api.amazon.test/auth/o2/token"


class FakeTimer:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)


class Lwa:
    """A scripted LWA endpoint: issues Atza|1, Atza|2, ... or the queued error answers."""

    def __init__(self, expires_in: int = 3600) -> None:
        self.expires_in = expires_in
        self.issued = 0
        self.errors: list[httpx.Response] = []
        self.forms: list[dict[str, list[str]]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)  # let concurrent callers pile up
        self.forms.append(parse_qs(request.content.decode()))
        if self.errors:
            return self.errors.pop(0)
        self.issued += 1
        return httpx.Response(200, json={"access_token": f"Atza|{self.issued}",
                                         "refresh_token": REFRESH_TOKEN, "token_type": "bearer",
                                         "expires_in": self.expires_in})


def provider(lwa: Lwa, timer: FakeTimer, margin: float = 60.0,
             cache: TokenCache | None = None) -> LwaTokenProvider:
    http = ApiHttp("lwa", error_parser=lwa_error, timer=timer, transport=httpx.MockTransport(lwa),
                   retry=RetryPolicy(max_attempts=3, base=1.0, cap=4.0))
    return LwaTokenProvider(TOKEN_URL, CLIENT_ID, SecretStr(CLIENT_SECRET),
                            SecretStr(REFRESH_TOKEN), margin=margin, http=http, cache=cache)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_the_grant_is_a_refresh_token_form() -> None:
    lwa, timer = Lwa(), FakeTimer()
    token = run(provider(lwa, timer).token())
    assert token.get_secret_value() == "Atza|1"
    assert lwa.forms == [{"grant_type": ["refresh_token"], "refresh_token": [REFRESH_TOKEN],
                          "client_id": [CLIENT_ID], "client_secret": [CLIENT_SECRET]}]


def test_token_is_cached_and_refreshed_a_margin_before_expiry() -> None:
    lwa, timer = Lwa(expires_in=3600), FakeTimer()
    tokens = provider(lwa, timer, margin=60.0)

    async def go() -> list[str]:
        seen = [(await tokens.token()).get_secret_value()]
        timer.t = 3539.0
        seen.append((await tokens.token()).get_secret_value())
        timer.t = 3541.0  # inside the last minute: refreshed before Amazon would refuse it
        seen.append((await tokens.token()).get_secret_value())
        return seen

    assert run(go()) == ["Atza|1", "Atza|1", "Atza|2"]
    assert lwa.issued == 2 and tokens.fetches == 2


def test_a_short_lived_token_is_still_used() -> None:
    lwa, timer = Lwa(expires_in=40), FakeTimer()
    tokens = provider(lwa, timer, margin=60.0)

    async def go() -> None:
        await tokens.token()
        timer.t = 20.0
        await tokens.token()

    run(go())
    assert lwa.issued == 1


def test_concurrent_callers_share_one_grant() -> None:
    lwa, timer = Lwa(), FakeTimer()
    tokens = provider(lwa, timer)

    async def go() -> set[str]:
        got = await asyncio.gather(*(tokens.token() for _ in range(20)))
        return {t.get_secret_value() for t in got}

    assert run(go()) == {"Atza|1"}
    assert lwa.issued == 1


def test_concurrent_refreshes_after_an_expired_answer_share_one_grant() -> None:
    lwa, timer = Lwa(), FakeTimer()
    tokens = provider(lwa, timer)

    async def go() -> set[str]:
        stale = await tokens.token()
        got = await asyncio.gather(*(tokens.refresh(stale) for _ in range(10)))
        return {t.get_secret_value() for t in got}

    assert run(go()) == {"Atza|2"}
    assert lwa.issued == 2


def test_an_expired_answer_mid_run_costs_one_refresh_and_the_call_succeeds() -> None:
    lwa, timer = Lwa(), FakeTimer()
    tokens = provider(lwa, timer)
    seen: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["x-amz-access-token"])
        if request.headers["x-amz-access-token"] == "Atza|1":
            return httpx.Response(403, json={"errors": [{"code": "Unauthorized",
                                                         "message": "Access denied"}]})
        return httpx.Response(200, json={"reports": []})

    http = ApiHttp("spapi", error_parser=spapi_error, expired_statuses=(403,), timer=timer,
                   transport=httpx.MockTransport(api))
    auth = TokenAuth(tokens, "x-amz-access-token")

    async def go() -> None:
        for _ in range(3):
            await http.call("getReports", "GET", "https://sp.test/reports", auth=auth)

    run(go())
    assert seen == ["Atza|1", "Atza|2", "Atza|2", "Atza|2"]
    assert lwa.issued == 2
    assert http.stats()["spapi.getReports"].refreshes == 1


@pytest.mark.parametrize(
    ("status", "error", "description"),
    [
        (400, "invalid_grant", "The request has an invalid grant parameter : refresh_token"),
        (401, "invalid_client", "Client authentication failed"),
        # Even an LWA that echoes a secret back does not get it printed.
        (400, "invalid_request", f"bad value {REFRESH_TOKEN} for {CLIENT_SECRET}"),
    ],
)
def test_lwa_refusals_are_auth_errors_naming_the_code_and_client_hint_only(
    status: int, error: str, description: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    lwa, timer = Lwa(), FakeTimer()
    lwa.errors = [httpx.Response(status, json={"error": error, "error_description": description})]
    tokens = provider(lwa, timer)
    with pytest.raises(AuthError) as info:
        run(tokens.token())
    text = str(info.value)
    assert error in text and "...WXYZ" in text
    assert len(lwa.forms) == 1  # a refused grant is not retried
    for shown in (text, repr(info.value), repr(tokens), *(r.getMessage() for r in caplog.records)):
        assert CLIENT_SECRET not in shown and REFRESH_TOKEN not in shown
        assert CLIENT_ID not in shown


def test_lwa_outages_are_retried() -> None:
    lwa, timer = Lwa(), FakeTimer()
    lwa.errors = [
        httpx.Response(503, json={"error": "temporarily_unavailable", "error_description": "x"}),
        httpx.Response(500, json={"error": "server_error", "error_description": "y"}),
    ]
    assert run(provider(lwa, timer).token()).get_secret_value() == "Atza|1"
    assert len(lwa.forms) == 3


def test_lwa_outage_that_lasts_is_a_remote_error_without_secrets() -> None:
    lwa, timer = Lwa(), FakeTimer()
    lwa.errors = [httpx.Response(500, json={"error": "server_error", "error_description": "down"})
                  ] * 5
    with pytest.raises(RemoteError) as info:
        run(provider(lwa, timer).token())
    assert "server_error" in str(info.value) and "...WXYZ" in str(info.value)
    assert CLIENT_SECRET not in str(info.value)


def test_a_token_cache_hands_the_token_on_to_later_providers_until_it_is_due() -> None:
    lwa, wall = Lwa(), [1000.0]
    cache = TokenCache({}, now=lambda: wall[0])
    # Each provider is a new invocation: its own timer starting at 0, the same cache.
    first = run(provider(lwa, FakeTimer(), cache=cache).token())
    assert first.get_secret_value() == "Atza|1"
    wall[0] += 3000
    later = provider(lwa, FakeTimer(), cache=cache)
    assert run(later.token()).get_secret_value() == "Atza|1" and lwa.issued == 1
    # A provider keeps a cached token only as long as it was good: 3540 s after the grant
    # (an hour less the 60 s margin), 540 s after it was handed on here.
    later_timer = FakeTimer()
    kept = provider(lwa, later_timer, cache=cache)
    run(kept.token())
    later_timer.t, wall[0] = 539, wall[0] + 539
    assert run(kept.token()).get_secret_value() == "Atza|1"
    later_timer.t, wall[0] = 541, wall[0] + 2
    assert run(kept.token()).get_secret_value() == "Atza|2"
    # ... and the next invocation gets the new one from the cache.
    assert run(provider(lwa, FakeTimer(), cache=cache).token()).get_secret_value() == "Atza|2"
    # An API refused the token: the refresh replaces it in the cache for everyone after.
    refused = provider(lwa, FakeTimer(), cache=cache)
    stale = run(refused.token())
    assert run(refused.refresh(stale)).get_secret_value() == "Atza|3"
    assert run(provider(lwa, FakeTimer(), cache=cache).token()).get_secret_value() == "Atza|3"
    assert lwa.issued == 3
    # Keyed by digest: no secret is a key.
    assert not any(REFRESH_TOKEN in k or CLIENT_SECRET in k for k in cache.entries)

