"""The emulator's ASGI application: LWA, Ads, SP-API and inspection routes on one server.

The APIs are served at the root (every region at once) and under `/na`, `/eu` and `/fe`, where
each region's host behaves like Amazon's regional host (see `request_region`).
"""

from __future__ import annotations

import uuid

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from amzlake.emulator.ads_api import ads_routes
from amzlake.emulator.downloads import download_routes
from amzlake.emulator.inspect import inspect_routes
from amzlake.emulator.lwa import lwa_routes
from amzlake.emulator.spapi_api import spapi_routes
from amzlake.emulator.state import EmulatorState

REGIONS = ("na", "eu", "fe")


class RequestIdMiddleware:
    """Adds `x-amzn-RequestId` to every response, as both Amazon APIs do."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-amzn-requestid", str(uuid.uuid4()).encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


def create_app(state: EmulatorState) -> ASGIApp:
    """The emulator application over `state`."""
    api: list[BaseRoute] = [*lwa_routes(state), *ads_routes(state), *spapi_routes(state)]
    routes: list[BaseRoute] = [
        *inspect_routes(state),
        *download_routes(state),
        *api,
        *(Mount(f"/{region}", routes=api) for region in REGIONS),
    ]
    return RequestIdMiddleware(Starlette(routes=routes))
