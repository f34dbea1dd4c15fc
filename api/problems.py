"""Errors as RFC 9457 problem details (``application/problem+json``): every refusal says what and why."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smartfarm.errors import StorageDenied

PROBLEM_JSON = "application/problem+json"

TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    422: "Invalid request",
    500: "Server error",
    503: "Service unavailable",
}


def problem(
    status: int, detail: str, instance: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status, "detail": detail}
    body |= {"instance": instance, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


class Problem(HTTPException):
    """An HTTP error the API raises on purpose, rendered as a problem detail."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail=detail, headers=headers)


class BodyLimit:
    """ASGI middleware: a request body larger than ``limit_bytes`` is refused with a 413 problem detail before a
    route reads it: by its Content-Length, or, sent chunked, counted here as it comes (and handed on once whole).
    What is refused is read and dropped, never held."""

    def __init__(self, app: ASGIApp, limit_bytes: int) -> None:
        self.app = app
        self.limit = limit_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        if declared is not None:
            await self.app(scope, receive, send)
            return
        # Chunked: read it here, up to the limit, and hand the app what was read.
        chunks: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            chunks.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.limit:
                await self._refuse(scope, receive, send, sent_all=not message.get("more_body", False))
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return chunks.pop(0) if chunks else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, sent_all: bool = False) -> None:
        """Answer 413 once the client has sent its body, which is read and dropped: a client still sending when the
        connection closed would see it reset and never read the answer."""
        while not sent_all:
            message = await receive()
            sent_all = message["type"] != "http.request" or not message.get("more_body", False)
        detail = f"the request body is larger than {self.limit:,} bytes"
        await problem(413, detail, str(scope.get("path", "")), {"Connection": "close"})(scope, receive, send)


def install(app: FastAPI) -> None:
    """Render every error of ``app`` as a problem detail: ours, FastAPI's validation and routing, and a crash."""

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), request.url.path, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()
        ]
        detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors) or "the request is invalid"
        return problem(422, detail, request.url.path, errors=errors)

    @app.exception_handler(StorageDenied)
    async def _denied(request: Request, exc: StorageDenied) -> JSONResponse:
        # The API's own InfluxDB login or grant, not the client's request: unavailable until an operator fixes it.
        detail = f"InfluxDB refused the farm API's user; the operator must fix {exc.settings} or its grant"
        return problem(503, detail, request.url.path, {"Retry-After": "60"})

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        return problem(500, f"the server failed on this request ({type(exc).__name__}); it is logged", request.url.path)
