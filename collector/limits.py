"""Request body limits: per route, on the wire and once inflated, read off the event loop.

Every request body is read through `LimitedRequest`: the `Content-Length` is checked
before a byte is read, the stream is cut off at the route's wire limit, a gzip body is
inflated in bounded steps (`zlib.decompressobj(...).decompress(data, max_length)`) in a
worker thread and stopped as soon as it passes the route's inflated limit or an inflate
ratio no kiosk upload comes near, and JSON is parsed in a worker thread too (with the
strict parser of pydantic-core, which refuses lone surrogates and invalid UTF-8). So a
63 MiB gzip bomb sent to the unauthenticated enrolment route costs about 1 KiB of memory
and the event loop keeps answering `/healthz`.

    >>> limits_for("POST", "/v1/devices").max_inflated
    1024
    >>> inflate(gzip.compress(b"x" * 10), BodyLimit(100, 100))
    b'xxxxxxxxxx'
"""

from __future__ import annotations

import gzip  # noqa: F401  (doctest)
import re
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import pydantic_core
from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

__all__ = [
    "BodyLimit", "LimitedRequest", "limited_route", "limits_for", "inflate", "parse_json", "csv_text",
    "ENROL_LIMIT", "BATCH_LIMIT", "DOCUMENT_LIMIT", "DEFAULT_LIMIT",
    "MAX_ENTRIES_PER_BATCH", "MAX_ENTRY_BYTES", "MAX_INFLATE_RATIO", "INFLATE_CHUNK",
]

#: Entries per batch: the kiosk's `sync.batch_size` allows at most this many.
MAX_ENTRIES_PER_BATCH = 10_000
#: One uploaded entry as JSON, generously: a kiosk's sealed entry is about 700 bytes.
MAX_ENTRY_BYTES = 2048
#: Inflate in steps of this many bytes, so a bomb is stopped as soon as it passes a limit.
INFLATE_CHUNK = 64 * 1024
#: Kiosk batches (random UUIDs, hashes and sealed fields) inflate about 3-10x; a body that
#: inflates more than this is refused once it is past RATIO_FLOOR bytes.
MAX_INFLATE_RATIO = 100
RATIO_FLOOR = 64 * 1024


@dataclass(frozen=True)
class BodyLimit:
    """`max_body`: bytes on the wire; `max_inflated`: bytes once gzip is undone."""

    max_body: int
    max_inflated: int


#: `POST /v1/devices`: a device id and a code, about 100 bytes.
ENROL_LIMIT = BodyLimit(1024, 1024)
#: `POST /v1/batches`: the largest batch a kiosk sends (10,000 entries), sent plain or gzip.
BATCH_LIMIT = BodyLimit(MAX_ENTRIES_PER_BATCH * MAX_ENTRY_BYTES, MAX_ENTRIES_PER_BATCH * MAX_ENTRY_BYTES)
#: `PUT /v1/{name}`: a published document (the kiosk refuses larger ones).
DOCUMENT_LIMIT = BodyLimit(16 * 1024 * 1024, 16 * 1024 * 1024)
#: Every other route: none takes a body but the declaration form's `POST /d`, whose longest
#: real form (every province and symptom ticked, a 100-letter name) is about 1.4 KiB.
DEFAULT_LIMIT = BodyLimit(4096, 4096)

_ROUTES: Mapping[tuple[str, str], BodyLimit] = {
    ("POST", "/v1/devices"): ENROL_LIMIT,
    ("POST", "/v1/batches"): BATCH_LIMIT,
    ("POST", "/v1/roster"): DOCUMENT_LIMIT,   # the quarantine roster's CSV (collector.form)
}


def limits_for(method: str, path_format: str, *, batch: BodyLimit | None = None) -> BodyLimit:
    """The limit of a route (by its path template, `/v1/{name}` for documents)."""
    if method == "PUT" and path_format.startswith("/v1/"):
        return DOCUMENT_LIMIT
    if batch is not None and (method, path_format) == ("POST", "/v1/batches"):
        return batch
    return _ROUTES.get((method, path_format), DEFAULT_LIMIT)


def _too_large(limit: int, what: str = "") -> HTTPException:
    return HTTPException(413, f"body larger than {limit} bytes{what}")


#: Content types a CSV upload may carry.
CSV_TYPES = frozenset({"text/csv", "application/csv"})


async def csv_text(request: Request, max_bytes: int, what: str) -> str:
    """An uploaded CSV's text: 413 past `max_bytes`, 400 unless UTF-8 (`what` names it
    in the message, e.g. "roster"), 415 unless sent as text/csv: a browser sends text/plain
    from any site's form without asking first, never text/csv (issue 23 item 5)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in CSV_TYPES:
        raise HTTPException(415, f"send the {what} CSV with Content-Type: text/csv (got {ctype or 'none'})")
    body = await request.body()
    if len(body) > max_bytes:
        raise HTTPException(413, f"{what} CSV larger than {max_bytes} bytes")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(400, f"the {what} CSV must be UTF-8") from None


def inflate(data: bytes, limit: BodyLimit) -> bytes:
    """Undo gzip in bounded steps; 413 past the inflated limit or the ratio, 400 if broken."""
    d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    ratio_cap = max(RATIO_FLOOR, MAX_INFLATE_RATIO * len(data))
    out, size = [], 0
    try:
        chunk = d.decompress(data, INFLATE_CHUNK)
        while True:
            size += len(chunk)
            if size > limit.max_inflated:
                raise _too_large(limit.max_inflated, " once decompressed")
            if size > ratio_cap:
                raise HTTPException(413, f"body inflates more than {MAX_INFLATE_RATIO} times its size "
                                         "once decompressed; no kiosk upload does")
            out.append(chunk)
            if not d.unconsumed_tail:
                break
            chunk = d.decompress(d.unconsumed_tail, INFLATE_CHUNK)
        if not d.eof:
            raise HTTPException(400, "gzip body is truncated")
        if d.unused_data:
            raise HTTPException(400, "data after the end of the gzip body")
    except zlib.error as exc:
        raise HTTPException(400, f"body is not valid gzip: {exc}") from None
    return b"".join(out)


def parse_json(body: bytes) -> Any:
    """Strict JSON: invalid UTF-8 and lone surrogates are a 400 with the parser's words.

    >>> parse_json(b'{"a": "\\\\ud800"}')
    Traceback (most recent call last):
    ...
    fastapi.exceptions.HTTPException: 400: body is not valid JSON: unexpected end of hex escape at line 1 column 14
    """
    try:
        value = pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        raise HTTPException(400, f"body is not valid JSON: {exc}") from None
    if _NUL_ESCAPE.search(body):
        # PostgreSQL text cannot hold NUL: refused here, not as a 500 from the database.
        raise HTTPException(400, "body holds a NUL character (\\u0000), which no text field may hold")
    return value


#: `\u0000` in a JSON string, unless its backslash is itself escaped (`\\u0000` is text).
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


class LimitedRequest(Request):
    """A request whose body is read within `limit`, inflated and parsed in a worker thread."""

    limit: BodyLimit = DEFAULT_LIMIT

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            max_body = self.limit.max_body
            declared = self.headers.get("content-length")
            if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > max_body:
                raise _too_large(max_body)
            chunks, size = [], 0
            async for chunk in self.stream():
                size += len(chunk)
                if size > max_body:
                    raise _too_large(max_body)
                chunks.append(chunk)
            raw = b"".join(chunks)
            encoding = self.headers.get("content-encoding", "identity").strip().lower()
            if encoding == "gzip":
                raw = await run_in_threadpool(inflate, raw, self.limit)
            elif encoding not in ("", "identity"):
                raise HTTPException(415, f"unsupported Content-Encoding {encoding!r}; use gzip")
            self._body = raw
        return self._body

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            self._json = await run_in_threadpool(parse_json, body)
        return self._json


def _query_names(dependant: Any) -> frozenset[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return frozenset(names)


def limited_route(*, batch: BodyLimit | None = None,
                  pre_auth: Mapping[tuple[str, str], Callable[[Request], Any]] | None = None) -> type[APIRoute]:
    """An APIRoute class reading bodies through LimitedRequest with the route's limit.
    `pre_auth[(method, path)]` runs (in a worker thread) before the body is read, so an
    unauthenticated upload is refused without reading or inflating it."""
    checks = dict(pre_auth or {})

    class Route(APIRoute):
        def get_route_handler(self) -> Callable:
            handler = super().get_route_handler()
            path = self.path_format

            known = _query_names(self.dependant)

            async def limited(request: Request) -> Response:
                if "\x00" in request.scope.get("path", "") or any(
                        "\x00" in k or "\x00" in v for k, v in request.query_params.multi_items()):
                    raise RequestValidationError([{
                        "type": "value_error", "loc": ("query",), "input": None,
                        "msg": "the URL holds a NUL character (%00), which no name may hold"}])
                unknown = sorted(set(request.query_params) - known)
                if unknown:
                    # A typo (`?venu=V1`) would otherwise be ignored without a word.
                    raise RequestValidationError([{
                        "type": "extra_forbidden", "loc": ("query", name), "input": request.query_params[name],
                        "msg": f"unknown parameter; this route takes {', '.join(sorted(known)) or 'none'}"}
                        for name in unknown])
                check = checks.get((request.method, path))
                if check is not None:
                    await run_in_threadpool(check, request)
                req = LimitedRequest(request.scope, request.receive)
                req.limit = limits_for(request.method, path, batch=batch)
                return await handler(req)

            return limited
    return Route
