"""The emulator's own endpoints under /_emulator: credentials, call counts, truth, clock, faults."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from amzlake.emulator.jobs import ReportJob
from amzlake.emulator.state import EmulatorState


def _job_view(state: EmulatorState, job: ReportJob) -> dict[str, Any]:
    now = state.clock.now()
    doc = job.document
    return {
        "api": job.api,
        "report_id": job.report_id,
        "owner": job.owner,
        "report_type": job.report_type,
        "status": job.status(now).value,
        "outcome": job.outcome.value,
        "created_at": job.created_at.isoformat(),
        # The delays drawn for the job (virtual seconds): benchmarks compute bounds from them.
        "queue_seconds": job.queue_seconds,
        "processing_seconds": job.processing_seconds,
        "request": job.request,
        "failure_reason": job.failure_reason,
        "generation_error": job.generation_error,
        "generation_seconds": job.generation_seconds,
        "document": None if doc is None else {
            "document_id": job.document_id,
            "size": doc.size,
            "uncompressed_size": doc.uncompressed_size,
            "sha256": doc.sha256,
            "path": str(doc.path),
        },
    }


def inspect_routes(state: EmulatorState) -> list[BaseRoute]:
    """Routes that let tests and people see inside the emulator."""

    async def credentials(request: Request) -> Response:
        return JSONResponse(state.world.credentials())

    async def calls(request: Request) -> Response:
        return JSONResponse(state.calls.snapshot())

    async def reset_calls(request: Request) -> Response:
        state.calls.reset()
        return JSONResponse(state.calls.snapshot())

    async def truth(request: Request) -> Response:
        job = state.jobs.find(request.path_params["api"], request.path_params["report_id"])
        if job is None:
            return JSONResponse({"error": "no such report"}, status_code=404)
        view = _job_view(state, job)
        view["truth"] = job.truth.to_json() if job.truth is not None else None
        return JSONResponse(view)

    async def reports(request: Request) -> Response:
        return JSONResponse({"reports": [_job_view(state, j) for j in state.jobs.all()]})

    async def clock(request: Request) -> Response:
        return JSONResponse({"now": state.clock.now().isoformat(), "scale": state.clock.scale})

    async def advance(request: Request) -> Response:
        try:
            seconds = float(request.query_params.get("seconds", "nan"))
            if not seconds >= 0:
                raise ValueError
        except ValueError:
            return JSONResponse({"error": "seconds must be a number >= 0"}, status_code=400)
        return JSONResponse({"now": state.clock.advance(seconds).isoformat()})

    async def faults(request: Request) -> Response:
        return JSONResponse({"faults": state.faults.summary()})

    return [
        Route("/_emulator/credentials", credentials),
        Route("/_emulator/calls", calls),
        Route("/_emulator/calls/reset", reset_calls, methods=["POST"]),
        Route("/_emulator/truth/{api}/{report_id}", truth),
        Route("/_emulator/reports", reports),
        Route("/_emulator/clock", clock),
        Route("/_emulator/clock/advance", advance, methods=["POST"]),
        Route("/_emulator/faults", faults),
    ]
