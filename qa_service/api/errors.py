"""The one error body every route answers with, `{"error": code, "message": "中文 / English"}`, and its OpenAPI entries.

    router = APIRouter(responses=errors_for(401, 403, 404, 409, 422))
"""
from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException


class ErrorOut(BaseModel):
    error: str = Field(..., description="machine-readable code, e.g. invalid_request, unauthorized, not_found")
    message: str = Field(..., description="what went wrong, in Chinese and English")


DESCRIPTIONS = {
    400: "malformed request",
    401: "no valid staff key (Authorization: Bearer <key>)",
    403: "the key's role (or department) may not do this",
    404: "no such resource",
    409: "conflicts with the current state (e.g. a reviewer publishing their own entry, a second active key of one name)",
    413: "upload too large",
    422: "invalid request: a field is missing, empty, too long, of the wrong type or unknown",
    429: "too many requests from this address",
    503: "the knowledge base is empty or unavailable",
}

HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large", 429: "rate_limited"}
HTTP_MESSAGES = {
    400: "请求格式有误 / malformed request",
    404: "未找到 / not found",
    405: "不支持该请求方法 / method not allowed",
}


def errors_for(*statuses: int) -> dict[int | str, dict]:
    return {s: {"model": ErrorOut, "description": DESCRIPTIONS[s]} for s in statuses}


async def http_exception(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's own errors (unknown route, wrong method, unparsable body) in the same shape as ours."""
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) else ""
    message = HTTP_MESSAGES.get(status, detail or "请求失败 / request failed")
    if detail and status not in HTTP_MESSAGES:
        message = detail
    return JSONResponse({"error": HTTP_CODES.get(status, "http_error"), "message": message}, status_code=status,
                        headers=getattr(exc, "headers", None))
