"""Request-body size limits: a body over the limit gets 413 before the application reads or parses it.

    app.add_middleware(BodyLimitMiddleware, default_bytes=64 * 1024, limits={"/v1/workorders/import": 20 << 20})

A declared Content-Length over the limit is refused at once, without reading a byte. A body without one (chunked
transfer) is read up to the limit and refused as soon as it passes it; within the limit it is handed on as one
message. Either way no more than `limit` bytes of a request are ever held, so a 60 MB JSON body costs nothing.
"""
from __future__ import annotations

import json
from typing import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _size(limit: int) -> str:
    return f"{limit / 1024 / 1024:g} MB" if limit >= 1024 * 1024 else f"{limit / 1024:g} KB"


class BodyLimitMiddleware:
    """ASGI middleware: 413 `{"error": "too_large", "message"}` for a request body over its route's limit."""

    def __init__(self, app: ASGIApp, default_bytes: int, limits: Mapping[str, int] | None = None):
        if default_bytes <= 0 or any(v <= 0 for v in (limits or {}).values()):
            raise ValueError("body limits must be positive")
        self.app = app
        self.default_bytes = default_bytes
        self.limits = dict(limits or {})

    def limit_for(self, path: str) -> int:
        return self.limits.get(path, self.default_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await self._refuse(send, 400, "invalid_request", "Content-Length 无效 / invalid Content-Length")
            elif int(declared) > limit:
                await self._too_large(send, limit)
            else:  # the server delivers no more than the declared length
                await self.app(scope, receive, send)
            return
        if b"chunked" not in headers.get(b"transfer-encoding", b"").lower():
            await self.app(scope, receive, send)  # no body
            return
        body = await self._read_chunked(receive, limit)
        if body is None:
            await self._too_large(send, limit)
            return
        await self.app(scope, _replay(body, receive), send)

    @staticmethod
    async def _read_chunked(receive: Receive, limit: int) -> bytes | None:
        """The whole body, or None as soon as it passes `limit` (or the client went away)."""
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts)

    async def _too_large(self, send: Send, limit: int) -> None:
        await self._refuse(send, 413, "too_large", f"请求内容超过 {_size(limit)} / the request body is larger than {_size(limit)}")

    @staticmethod
    async def _refuse(send: Send, status: int, error: str, message: str) -> None:
        body = json.dumps({"error": error, "message": message}, ensure_ascii=False).encode("utf-8")
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()), (b"connection", b"close")],
        })
        await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive() that gives the buffered body once, then whatever the client sends next (its disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
