"""Staff authentication (API keys and roles) and per-address rate limiting of the public routes.

    keys = KeyService(kb)
    token = keys.create(name="李审核", role=Role.REVIEWER).token      # shown once; only its hash is stored
    @router.post("/v1/faqs/{faq_id}/publish")
    def publish(staff: StaffDep(Role.REVIEWER)): ...                  # qa_service/api/deps.py

Roles are hierarchical: operator < editor < reviewer < admin, and each role may do everything the roles
below it may. The issue's roles describe growing responsibility (an editor also reads analytics, a
reviewer may fix a draft before approving it, an admin manages everything), and one ordered scale keeps
every check a single comparison. What a hierarchy must not weaken, the FAQ service enforces itself: a
reviewer can never review or publish an entry they wrote, whatever their role (compared by key id).

A key may belong to a 处室/单位 (`department`): its editor or reviewer then acts only on that department's FAQ
entries (the FAQ service enforces it, 403 otherwise). Admins act on every department's entries, and so does a key
without a department (a city-wide one, and every key made before departments existed).

Keys are random 256-bit tokens, stored as their SHA-256. A slow password hash (bcrypt, argon2) defends
low-entropy secrets against guessing; a 256-bit random token cannot be guessed, so one fast, unsalted
hash is enough, and it lets a request find its key by an indexed equality lookup. The database alone
never reveals a usable key.
"""
from __future__ import annotations

import enum
import hashlib
import ipaddress
import json
import math
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Sequence, Union

from fastapi import Depends, Request

from knowledge_base.api_keys import ApiKeyRecord, ApiKeyRepository
from knowledge_base.models import Actor
from knowledge_base.store import KnowledgeBase

KEY_PREFIX = "pqa_"
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class Role(str, enum.Enum):
    OPERATOR = "operator"  # 12345 console and its history, analytics (read)
    EDITOR = "editor"  # + create, import and edit FAQ drafts, submit them for review
    REVIEWER = "reviewer"  # + review with the 保密审查, publish, retire
    ADMIN = "admin"  # + documents and API keys

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


_RANK = {Role.OPERATOR: 1, Role.EDITOR: 2, Role.REVIEWER: 3, Role.ADMIN: 4}
ROLE_LABELS = {Role.OPERATOR: "话务员", Role.EDITOR: "编辑", Role.REVIEWER: "审核员", Role.ADMIN: "管理员"}


class ApiError(Exception):
    """An error answered as `{"error": code, "message": "中文 / English"}` with `status`."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True)
class StaffIdentity:
    """Who is calling: the key's name is the actor recorded in the FAQ audit log."""

    key_id: int
    name: str
    role: Role
    department: str | None = None

    def may(self, role: Role) -> bool:
        return self.role.rank >= role.rank

    @property
    def actor(self) -> Actor:
        """The curation actor: this key, limited to its department unless it is an admin's."""
        return Actor(self.name, self.key_id, None if self.role is Role.ADMIN else self.department)


@dataclass(frozen=True)
class ApiKeyInfo:
    key_id: int
    name: str
    role: Role
    created_at: datetime
    revoked: bool
    department: str | None = None


@dataclass(frozen=True)
class NewApiKey:
    info: ApiKeyInfo
    token: str  # the only time the plain key exists outside the caller's hands


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise ApiError(422, "invalid_role", f"未知角色 / unknown role {value!r}; one of: {allowed}") from None


class KeyService:
    """Create, list, revoke and verify staff API keys."""

    def __init__(self, kb: KnowledgeBase):
        self.repository = ApiKeyRepository(kb)

    def create(self, name: str, role: Role, department: str | None = None) -> NewApiKey:
        name = (name or "").strip()
        if not name or len(name) > 200:
            raise ApiError(422, "invalid_name", "名称不能为空且不超过200字 / name must be 1–200 characters")
        department = (department or "").strip() or None
        if department and len(department) > 200:
            raise ApiError(422, "invalid_department", "部门名称不超过200字 / department must be at most 200 characters")
        # The name is what the audit trail and the FAQ pages show: two live keys of one name would read as one
        # person (an editor's change and a reviewer's approval looking like self-approval).
        taken = self.repository.active_named(name)
        if taken is not None:
            raise ApiError(409, "conflict", f"已有同名的有效密钥（#{taken.key_id}），请换一个名称或先停用它 / an active key "
                                            f"named {name!r} exists (#{taken.key_id}): choose another name or revoke it first")
        token = KEY_PREFIX + secrets.token_urlsafe(32)
        record = self.repository.add(name=name, role=Role(role).value, key_hash=hash_key(token), department=department)
        return NewApiKey(_info(record), token)

    def list(self) -> list[ApiKeyInfo]:
        return [_info(r) for r in self.repository.list()]

    def revoke(self, key_id: int) -> ApiKeyInfo:
        record = self.repository.revoke(key_id)
        if record is None:
            raise ApiError(404, "not_found", f"未找到该密钥 / no API key {key_id}")
        return _info(record)

    def verify(self, token: str) -> StaffIdentity | None:
        if not token or not token.startswith(KEY_PREFIX) or len(token) > 200:
            return None
        record = self.repository.by_hash(hash_key(token))
        if record is None or record.revoked:
            return None
        try:
            return StaffIdentity(record.key_id, record.name, Role(record.role), record.department)
        except ValueError:  # a role this version does not know grants nothing
            return None


def _info(record: ApiKeyRecord) -> ApiKeyInfo:
    return ApiKeyInfo(record.key_id, record.name, Role(record.role), record.created_at, record.revoked, record.department)


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


# ------------------------------------------------------------------------------------------ FastAPI dependencies

_UNAUTHORIZED = "需要有效的工作人员密钥（Authorization: Bearer <key>）/ a valid staff API key is required (Authorization: Bearer <key>)"


def current_staff(request: Request) -> StaffIdentity:
    """The caller's identity from `Authorization: Bearer <key>`; 401 without a valid, unrevoked key."""
    token = bearer_token(request.headers.get("authorization"))
    identity = _keys(request).verify(token) if token else None
    if identity is None:
        raise ApiError(401, "unauthorized", _UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
    return identity


def require_role(role: Role) -> Callable[..., StaffIdentity]:
    """A dependency admitting `role` and every role above it; 401 without a key, 403 below the role."""

    def dependency(staff: StaffIdentity = Depends(current_staff)) -> StaffIdentity:
        if not staff.may(role):
            raise ApiError(
                403,
                "forbidden",
                f"权限不足：此操作需要{role.label}或更高角色，当前为{staff.role.label} / "
                f"forbidden: this needs the {role.value} role or higher, the key has {staff.role.value}",
            )
        return staff

    dependency.__name__ = f"require_{role.value}"
    return dependency


def _keys(request: Request) -> KeyService:
    return request.app.state.services.keys


# ------------------------------------------------------------------------------------------ rate limiting

# Citizen-facing routes, by path prefix: the JSON API the widget calls and the pages a citizen opens.
# Staff routes, the health check, the docs and static assets are not limited.
PUBLIC_RATE_LIMITED = ("/v1/ask", "/v1/chat", "/v1/search", "/v1/documents", "/v1/feedback", "/widget.js", "/documents/", "/demo")


def is_public_path(path: str) -> bool:
    """`/v1/documents` covers `/v1/documents/{id}`; a prefix ending in `/` covers everything below it."""
    return any(path.startswith(p) if p.endswith("/") else (path == p or path.startswith(p + "/")) for p in PUBLIC_RATE_LIMITED)


class TokenBucketLimiter:
    """`per_minute` requests per client address per minute, with bursts up to `per_minute`.

    A token bucket per address (capacity per_minute, refilled at per_minute/60 a second): a citizen who asks
    three questions quickly is never held back, a script hammering /v1/ask settles at the limit. Kept in
    process memory, so each server process counts on its own.
    """

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, last refill time)
        self._lock = threading.Lock()
        self._last_sweep = clock()

    def hit(self, address: str) -> float:
        """Take one token; returns 0 when allowed, else the seconds until the next token."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(address, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[address] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[address] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
            if now - self._last_sweep > 60:
                self._sweep(now)
            return wait

    def _sweep(self, now: float) -> None:
        # A bucket idle for a minute is full again: the same as no bucket.
        full_after = 60.0
        self._buckets = {a: (t, last) for a, (t, last) in self._buckets.items() if now - last < full_after}
        self._last_sweep = now


def client_address(scope, trusted_proxies: Sequence[IPNetwork] = ()) -> str:
    """The address a request's bucket is keyed on: the connecting peer, unless the peer is a trusted proxy; then the
    right-most X-Forwarded-For entry that is not itself a trusted proxy (entries left of it are the client's to
    forge). With no trusted proxies (the default) the header is ignored: anyone can send it."""
    client = scope.get("client")
    peer = client[0] if client else "unknown"
    if not trusted_proxies or not _is_trusted(peer, trusted_proxies):
        return peer
    forwarded = b",".join(v for k, v in scope.get("headers", []) if k == b"x-forwarded-for").decode("latin-1")
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if not _is_trusted(hop, trusted_proxies):
            return hop
    return peer


def _is_trusted(address: str, networks: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks)


class RateLimitMiddleware:
    """ASGI middleware: 429 with a message on public routes once an address exceeds the limit.

    Requests carrying a valid staff key are not counted: operators of a 12345 centre share one address.
    X-Forwarded-For is believed only from `trusted_proxies` (POLICYQA_TRUSTED_PROXIES), see `client_address`.
    """

    def __init__(self, app, per_minute: int, verify_key: Callable[[str], StaffIdentity | None] | None = None,
                 trusted_proxies: Sequence[IPNetwork] = ()):
        self.app = app
        self.limiter = TokenBucketLimiter(per_minute) if per_minute > 0 else None
        self.verify_key = verify_key
        self.trusted_proxies = tuple(trusted_proxies)
        self._staff_cache: dict[str, tuple[bool, float]] = {}

    async def __call__(self, scope, receive, send):
        if (
            self.limiter is None
            or scope["type"] != "http"
            or scope.get("method") == "OPTIONS"
            or not is_public_path(scope.get("path", ""))
            or self._is_staff(scope)
        ):
            await self.app(scope, receive, send)
            return
        wait = self.limiter.hit(client_address(scope, self.trusted_proxies))
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        retry = max(1, math.ceil(wait))
        body = json.dumps(
            {
                "error": "rate_limited",
                "message": f"请求过于频繁，请{retry}秒后再试 / too many requests from this address; retry in {retry} s",
                "retry_after": retry,
            },
            ensure_ascii=False,
        ).encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json; charset=utf-8"),
                    (b"retry-after", str(retry).encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _is_staff(self, scope) -> bool:
        if self.verify_key is None:
            return False
        auth = next((v for k, v in scope.get("headers", []) if k == b"authorization"), None)
        token = bearer_token(auth.decode("latin-1")) if auth else None
        if not token:
            return False
        now = time.monotonic()
        cached = self._staff_cache.get(token)
        if cached and cached[1] > now:
            return cached[0]
        ok = self.verify_key(token) is not None
        if len(self._staff_cache) > 1000:
            self._staff_cache.clear()
        self._staff_cache[token] = (ok, now + 10.0)  # a revoked key is counted again within 10 s
        return ok
