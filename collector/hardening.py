"""What the collector does for every route, so each route does not have to remember it:

- bodies read with the route's limits, off the event loop (collector.limits);
- enrolment rate limits per source address and per device id, in the database
  (collector.ratelimit), and one answer for every refused code;
- `Cache-Control: no-store` on every answer that does not set its own (reports, tracing,
  tokens and the tracing key must never sit in a browser's or a proxy's cache);
- no `/docs` or `/redoc` pages (they load their scripts from a public CDN, on the same
  origin as the admin pages); the OpenAPI document stays at `/openapi.json`;
- the OpenAPI document lists every status a route answers: the route's own, plus 401
  where it takes a token, 400/413/415/422 where it takes a body, 422 where it takes
  parameters and 429 where it is rate limited.

    >>> from fastapi import FastAPI
    >>> from collector.config import CollectorConfig
    >>> app = FastAPI()
    >>> install(app, CollectorConfig(db_url="sqlite://"), engine=None)
    >>> [r.path for r in app.routes if getattr(r, "path", "").startswith("/docs")]
    []
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlsplit

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from starlette.concurrency import run_in_threadpool
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.exceptions import HTTPException as StarletteHTTPException

from collector import limits, ratelimit

__all__ = ["install", "enrol_rate_limit", "ENROL_REFUSED", "enrol_refused", "CSVResponse"]

#: The one answer for an unknown, expired, used or another device's code: which of those
#: it was would tell a guesser which codes exist.
ENROL_REFUSED = "enrolment code not accepted (unknown, expired, already used or for another device)"
NO_STORE = (b"cache-control", b"no-store")
#: Sent on every answer: no other site may frame a page (the officer's pages carry Basic
#: credentials a framing page could click through: issue 23 item 5), nor sniff a CSV or
#: JSON answer into a script.
FRAMING = [(b"content-security-policy", b"frame-ancestors 'none'"), (b"x-frame-options", b"DENY"),
           (b"x-content-type-options", b"nosniff")]
_DOC_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")
_ERROR_SCHEMA = {"application/json": {"schema": {
    "type": "object", "properties": {"detail": {}}, "required": ["detail"]}}}
STATUS_WORDS = {
    400: "malformed body: not JSON, not valid UTF-8, or broken gzip",
    401: "no token, or a wrong one",
    413: "body too large, on the wire or once decompressed",
    415: "unsupported Content-Encoding (use gzip)",
    422: "a value is missing, malformed or out of range, or a parameter is unknown; `detail` names it",
    429: "too many attempts; wait for Retry-After seconds",
}


class CSVResponse(PlainTextResponse):
    """text/csv, so the OpenAPI document says what the report route really answers."""

    media_type = "text/csv"


def enrol_refused() -> HTTPException:
    return HTTPException(401, ENROL_REFUSED)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


async def enrol_rate_limit(request: Request) -> None:
    """Count an enrolment attempt against its source address and the device id it names;
    429 with Retry-After once either is over its limit."""
    limiter: ratelimit.RateLimiter = request.app.state.rate_limiter
    now = request.app.state.clock()
    body = await request.json()
    device = body.get("device_id") if isinstance(body, dict) else None
    keys = [(f"enrol-addr:{request.client.host if request.client else '-'}", ratelimit.ENROL_PER_ADDRESS)]
    if isinstance(device, str) and device:
        keys.append((f"enrol-device:{device}", ratelimit.ENROL_PER_DEVICE))
    waits = [await run_in_threadpool(limiter.hit, key, limit=limit, window=ratelimit.ENROL_WINDOW_S, now=now)
             for key, limit in keys]
    wait = max((w for w in waits if w), default=None)
    if wait:
        raise HTTPException(429, f"too many enrolment attempts; try again in {wait} s",
                            headers={"Retry-After": str(wait)})


async def _allow_every_method(request: Request, exc: StarletteHTTPException) -> Response:
    """A 405 lists in `Allow` the methods of every route on that path (Starlette names only
    the first route it tried: `OPTIONS /d` said `Allow: GET` although `POST /d` exists)."""
    if exc.status_code == 405:
        path = request.scope.get("path", "")
        methods = sorted({m for r in request.app.router.routes if isinstance(r, APIRoute)
                          and r.path_regex.match(path) for m in (r.methods or ())})
        exc.headers = {**(exc.headers or {}), "Allow": ", ".join(methods)}
    return await http_exception_handler(request, exc)


class _StandardHeaders:
    """ASGI middleware: `Cache-Control: no-store` unless the answer set its own, and the
    FRAMING headers (a page's own Content-Security-Policy gains frame-ancestors)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_no_store(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append(NO_STORE)
                for name, value in FRAMING:
                    at = [i for i, (k, _) in enumerate(headers) if k.lower() == name]
                    if not at:
                        headers.append((name, value))
                    elif name == b"content-security-policy" and b"frame-ancestors" not in headers[at[0]][1]:
                        headers[at[0]] = (name, headers[at[0]][1].rstrip(b"; ") + b"; " + value)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_no_store)


#: Methods that change something: a browser sends them from another site's page too, with
#: the officer's Basic credentials attached (issue 23 item 5).
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Sec-Fetch-Site values of a request this site's own pages (or no page: a typed URL, a
#: kiosk, curl) made.
OWN_SITE = frozenset({"same-origin", "none"})
CROSS_SITE = "refused: a request from another site's page (Origin or Sec-Fetch-Site); use this site's own pages"


def cross_site(method: str, headers: Mapping[str, str]) -> bool:
    """True for a state-changing request made by another origin's page.

        >>> cross_site("POST", {"sec-fetch-site": "cross-site"})
        True
        >>> cross_site("POST", {"origin": "https://evil.example", "host": "collector.example"})
        True
        >>> cross_site("POST", {"origin": "https://collector.example", "host": "collector.example"})
        False
        >>> cross_site("POST", {})      # a kiosk, curl: no browser headers at all
        False
        >>> cross_site("GET", {"sec-fetch-site": "cross-site"})
        False
    """
    if method.upper() not in UNSAFE_METHODS:
        return False
    site = headers.get("sec-fetch-site")
    if site is not None and site.strip().lower() not in OWN_SITE:
        return True
    origin = headers.get("origin")
    if origin is None:
        return False
    if origin.strip().lower() == "null":
        return True  # a sandboxed frame or a data: page
    netloc = _host_port(urlsplit(origin.strip()).netloc)
    # Behind a proxy the Host may be the proxy's upstream; X-Forwarded-Host names the
    # public one. A page on another site cannot set either on a victim's request.
    own = {_host_port(headers.get("host", "")), _host_port(headers.get("x-forwarded-host", ""))}
    return not netloc or netloc not in own


def _host_port(value: str) -> str:
    value = value.split(",")[0].strip().lower()
    for default in (":80", ":443"):
        if value.endswith(default):
            return value[: -len(default)]
    return value


class _RefuseCrossSite:
    """ASGI middleware: 403 for a POST/PUT/PATCH/DELETE that another site's page sent."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope.get("method", "GET") in UNSAFE_METHODS:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            if cross_site(scope["method"], headers):
                response = JSONResponse({"detail": CROSS_SITE}, status_code=403)
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


def _walk(dependant: Any) -> list[Any]:
    """The dependant and every sub-dependant, depth first."""
    out = [dependant]
    for d in dependant.dependencies:
        out += _walk(d)
    return out


def _statuses(route: APIRoute) -> dict[int, str]:
    every = _walk(route.dependant)
    calls = [d.call for d in every]
    codes: list[int] = []
    if any(isinstance(c, SecurityBase) for c in calls):
        codes.append(401)
    if route.body_field is not None:
        codes += [400, 413, 415]
    codes.append(422)  # a bad parameter, or one the route does not take (collector.limits)
    if enrol_rate_limit in calls:
        codes.append(429)
    return {c: STATUS_WORDS[c] for c in codes}


def _one_path_per_document(schema: dict[str, Any], route: APIRoute, documents: Iterable[str]) -> None:
    """`PUT /v1/{name:document}` is listed as `PUT /v1/trust`, `PUT /v1/rules`, ...: the
    paths it really answers on, beside their GET (so `Allow: GET, PUT` is what the
    document says)."""
    import copy

    found = re.search(r"\{(\w+):document\}", route.path)
    ops = schema["paths"].pop(route.path_format, None)
    if found is None or ops is None:
        return
    param = found.group(1)
    for name in documents:
        path = route.path_format.replace("{" + param + "}", name)
        for method, op in ops.items():
            op = copy.deepcopy(op)
            op["parameters"] = [p for p in op.get("parameters", []) if p.get("in") != "path"]
            if not op["parameters"]:
                del op["parameters"]
            op["operationId"] = f"{op.get('operationId', method)}_{name}"
            op["responses"].pop("404", None)  # only document names reach this route
            schema["paths"].setdefault(path, {})[method] = op


def _document_statuses(app: FastAPI, documents: Iterable[str] = ()) -> None:
    plain = app.openapi
    documents = tuple(documents)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = plain()
        for route in app.routes:
            if not isinstance(route, APIRoute) or not route.include_in_schema:
                continue
            extra = _statuses(route)
            for method in route.methods:
                op = schema["paths"].get(route.path_format, {}).get(method.lower())
                if op is None:
                    continue
                for code, words in extra.items():
                    op["responses"].setdefault(str(code), {"description": words, "content": _ERROR_SCHEMA})
            if ":document}" in route.path:
                _one_path_per_document(schema, route, documents)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


class _DocumentName(StringConvertor):
    """`{name:document}`: only the names of published documents, so `PUT /v1/{name}` does
    not also claim `/v1/trace` (whose OPTIONS would then answer `Allow: PUT`)."""

    def __init__(self, names: Iterable[str]) -> None:
        self.regex = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


def install(app: FastAPI, cfg: Any, *, engine: Any, clock: Callable[[], datetime] = _utcnow,
            documents: Iterable[str] = (),
            pre_auth: Mapping[tuple[str, str], Callable[[Request], Any]] | None = None) -> None:
    """Set all of the above on a new app, before its routes are added."""
    register_url_convertor("document", _DocumentName(documents or ("-",)))
    app.router.route_class = limits.limited_route(
        batch=limits.BodyLimit(cfg.max_body_bytes, cfg.max_inflated_bytes), pre_auth=pre_auth)
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", None) not in _DOC_PATHS]
    app.docs_url = app.redoc_url = None
    app.state.clock = clock
    if engine is not None:
        app.state.rate_limiter = ratelimit.RateLimiter(engine)
    app.add_middleware(_RefuseCrossSite)
    app.add_middleware(_StandardHeaders)
    app.add_exception_handler(StarletteHTTPException, _allow_every_method)
    _document_statuses(app, documents)
