"""Login with Amazon: `POST /auth/o2/token` with the refresh_token grant (form or JSON body)."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from amzlake.emulator.state import ApiError, EmulatorState, LwaRejected

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _error(status: int, error: str, description: str) -> Response:
    return JSONResponse({"error_description": description, "error": error}, status_code=status,
                        headers=_NO_STORE)


async def _parameters(request: Request) -> dict[str, str]:
    body = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        data = json.loads(body or b"{}")
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")
        return {str(k): str(v) for k, v in data.items()}
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))


def lwa_routes(state: EmulatorState) -> list[BaseRoute]:
    """The LWA token endpoint."""

    async def token(request: Request) -> Response:
        state.calls.record("lwa.token")
        try:
            await state.apply_call_fault("ads", state.faults.call_fault("lwa.token"))
        except ApiError as e:
            # LWA speaks OAuth: only server_error / temporarily_unavailable are worth a retry.
            error = "temporarily_unavailable" if e.status in (429, 503) else "server_error"
            return _error(e.status, error, e.message)
        try:
            params = await _parameters(request)
        except (ValueError, UnicodeDecodeError):
            return _error(400, "invalid_request", "The request body is malformed")
        grant_type = params.get("grant_type")
        if grant_type is None:
            return _error(400, "invalid_request", "The request is missing a required parameter : grant_type")
        if grant_type != "refresh_token":
            return _error(400, "unsupported_grant_type", f"The authorization grant type {grant_type} "
                          "is not supported by the authorization server")
        for name in ("refresh_token", "client_id", "client_secret"):
            if not params.get(name):
                return _error(400, "invalid_request",
                              f"The request is missing a required parameter : {name}")
        try:
            access_token, expires_in = state.tokens.issue(
                params["client_id"], params["client_secret"], params["refresh_token"]
            )
        except LwaRejected as e:
            return _error(400, e.error, e.description)
        return JSONResponse(
            {
                "access_token": access_token,
                "refresh_token": params["refresh_token"],
                "token_type": "bearer",
                "expires_in": expires_in,
            },
            headers=_NO_STORE,
        )

    return [Route("/auth/o2/token", token, methods=["POST"])]
