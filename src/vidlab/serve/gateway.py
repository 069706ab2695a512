"""What every request passes before a route: request ID, drain, API key, rate limit, access log.

`Gateway` is plain ASGI middleware, outermost but for CORS. In order:

1. **Request ID**: the client's `X-Request-ID` (if it is 1-128 characters of `[A-Za-z0-9._:-]`)
   or a new one; echoed in the response header, in every error body (`request_id`) and in every
   log line written while the request runs (`vidlab.serve.jsonlog.REQUEST_ID`).
2. **Drain**: once the server drains (`vidlab.serve.drain`), requests other than health checks
   get 503 `draining`.
3. **API key** (with `keys`): `Authorization: Bearer KEY` on every route but liveness and the
   page's static shell; 401 without or with an unknown key, 403 for an admin route without an
   admin key. Admin routes need an admin key even when no key file is given (they are refused).
4. **Rate limit** (with `limiter`): a token bucket per key name (per client address without
   keys); 429 with `Retry-After`.
5. **Access log**: one JSON line per request on the `vidlab.access` logger (never the key, only
   its name).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from vidlab.serve.auth import ApiKeys, RateLimiter
from vidlab.serve.jsonlog import REQUEST_ID

access_log = logging.getLogger("vidlab.access")

LIVENESS = frozenset({"/healthz", "/v2/health/live"})
HEALTH = LIVENESS | {"/readyz", "/v2/health/ready"}
PUBLIC_PREFIXES = ("/static/",)  # the page's own assets: no data, no model
PUBLIC = LIVENESS | {"/", "/favicon.ico"}
ADMIN = re.compile(r"^/v1/models/[^/]+/reload$")
_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_ERROR_BODY_MAX = 64 * 1024  # error bodies larger than this pass through unchanged


class Drain:
    """Shared by the server and the gateway: whether the server drains, requests in flight."""

    def __init__(self) -> None:
        self.draining = False
        self.in_flight = 0


class Gateway:
    """ASGI middleware doing steps 1-5 above around `app`."""

    def __init__(self, app: Any, drain: Drain, keys: ApiKeys | None = None,
                 limiter: RateLimiter | None = None, log_access: bool = True,
                 refusals: Any = None):
        self.app, self.drain, self.keys, self.limiter = app, drain, keys, limiter
        self.log_access = log_access
        self.refusals = refusals  # a Counter by `reason`, shown in /metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        request_id = given if _ID.fullmatch(given) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        state = {"status": 0, "bytes": 0}
        who: str | None = None
        try:
            answer, who = self._admit(scope, headers)
            reply = _with_request_id(send, request_id, state)
            if answer is not None:
                if self.refusals is not None:
                    self.refusals.labels(answer[1]).inc()
                await reply_json(reply, *answer)
                return
            self.drain.in_flight += 1
            try:
                await self.app(scope, receive, reply)
            finally:
                self.drain.in_flight -= 1
        finally:
            if self.log_access:
                _log(scope, headers, state, who, t0)
            REQUEST_ID.reset(token)

    def _admit(self, scope: dict, headers: dict[str, str]
               ) -> tuple[tuple[int, str, str, dict[str, str]] | None, str | None]:
        """`(refusal or None, key name or None)` for a request before it reaches a route."""
        path = scope["path"]
        if scope["method"] == "OPTIONS" or path in LIVENESS:
            return None, None
        if self.drain.draining and path not in HEALTH:
            return (503, "draining", "the server is shutting down; retry on another instance",
                    {"Retry-After": "1", "Connection": "close"}), None
        public = path in PUBLIC or path.startswith(PUBLIC_PREFIXES)
        who = None
        if self.keys is not None and not public:
            scheme, _, presented = headers.get("authorization", "").partition(" ")
            key = self.keys.identify(presented.strip()) if scheme.lower() == "bearer" else None
            if key is None:
                return (401, "unauthorized", "send a valid API key as 'Authorization: Bearer "
                        "KEY'", {"WWW-Authenticate": 'Bearer realm="vidlab"'}), None
            who = key.name
            if ADMIN.match(path) and not key.admin:
                return (403, "forbidden", f"this route needs an admin key ('{who}' is not)",
                        {}), who
        elif ADMIN.match(path):
            return (403, "forbidden", "admin routes need --api-keys with an admin key", {}), None
        if self.limiter is not None and not public:
            client = who or (scope.get("client") or ("?",))[0]
            wait = self.limiter.wait_s(f"key:{who}" if who else f"addr:{client}")
            if wait > 0:
                return (429, "rate_limited", f"too many requests from '{client}'; retry in "
                        f"{wait:.2f} s (--rate-limit)",
                        {"Retry-After": RateLimiter.retry_after(wait)}), who
        return None, who


async def reply_json(send: Callable, status: int, kind: str, message: str,
                     headers: dict[str, str]) -> None:
    """Answer in the server's error shape (the request ID is added by the send wrapper)."""
    body = json.dumps({"error": {"status": status, "type": kind, "message": message}}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _with_request_id(send: Callable, request_id: str, state: dict) -> Callable:
    """`send` that adds `X-Request-ID` to the headers and `request_id` to JSON error bodies."""
    held: dict[str, Any] = {}

    async def wrapped(message: dict) -> None:
        if message["type"] == "http.response.start":
            state["status"] = message["status"]
            headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            message = {**message, "headers": headers}
            kind = dict(headers).get(b"content-type", b"")
            if message["status"] >= 400 and kind.startswith(b"application/json"):
                held["start"], held["body"] = message, b""
                return
        elif message["type"] == "http.response.body":
            state["bytes"] += len(message.get("body", b""))
            if "start" in held:
                held["body"] += message.get("body", b"")
                more = message.get("more_body", False)
                if more and len(held["body"]) <= _ERROR_BODY_MAX:
                    return
                start, body = held.pop("start"), held.pop("body")
                if not more:  # the whole body is here: add the ID, fix the length
                    body = _add_request_id(body, request_id)
                    start["headers"] = [(k, v) for k, v in start["headers"]
                                        if k.lower() != b"content-length"]
                    start["headers"].append((b"content-length", str(len(body)).encode()))
                await send(start)
                message = {**message, "body": body}
        await send(message)

    return wrapped


def _add_request_id(body: bytes, request_id: str) -> bytes:
    """`{"error": {...}}` gets `request_id` inside, `{"error": "..."}` (OIP) beside."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        data["error"]["request_id"] = request_id
    elif isinstance(data, dict) and "error" in data:
        data["request_id"] = request_id
    else:
        return body
    return json.dumps(data).encode()


def _log(scope: dict, headers: dict[str, str], state: dict, who: str | None, t0: float) -> None:
    client = scope.get("client") or ("", 0)
    access_log.info("%s %s %d", scope["method"], scope["path"], state["status"], extra={
        "fields": {"method": scope["method"], "path": scope["path"],
                   "query": scope.get("query_string", b"").decode("latin-1")[:512],
                   "status": state["status"], "duration_ms": round(
                       (time.perf_counter() - t0) * 1e3, 2),
                   "bytes_out": state["bytes"], "client": client[0], "key": who,
                   "user_agent": headers.get("user-agent", "")[:200]}})
