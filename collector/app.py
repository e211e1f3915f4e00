"""The collector's HTTP API (FastAPI). The OpenAPI document is at /openapi.json.

Device endpoints take `Authorization: Bearer <device token>` (from `POST /v1/devices`);
report, tracing and publishing endpoints take the admin token from the collector config.

    >>> from collector.storage import Store
    >>> app = create_app(Store("sqlite://"))
    >>> app.title
    'Kiosk collector'
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated, Any, Callable, Literal, Mapping, Optional

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
import pydantic_core
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from collector import hardening, validation
from collector.config import CollectorConfig
from collector.limits import MAX_ENTRIES_PER_BATCH
from collector import publish as publish_mod
from collector.storage import DOCUMENTS, EnrolError, Store
from kiosk.checks.signed import CONTENT_TYPE as SIGNED_CONTENT_TYPE
from kiosk.checks.signed import DOCUMENTS as SIGNED_DOCUMENTS
from kiosk.checks.signed import open_document, peek
from kiosk.seal import subject_hash as subject_hash_of
from collector.tracing import opened_fields, trace as trace_query

__all__ = ["create_app", "Batch", "UploadEntry", "BatchAck", "MAX_ENTRIES_PER_BATCH"]

#: Longest published document (trust list, rules, deny list) accepted by PUT.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
CODE_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --- request and response models ---------------------------------------------------

class UploadEntry(BaseModel):
    """One journal entry as the kiosk uploads it (`kiosk.journal.Entry.as_upload()`)."""

    model_config = ConfigDict(extra="ignore")  # newer kiosks may send more fields

    id: str = Field(pattern=UUID_PATTERN, description="UUID made at scan time; the dedupe key")
    scanned_at: validation.IsoDateTime
    device_id: validation.DeviceId
    venue_code: validation.VenueCode
    outcome: Literal["pass", "fail", "review"]
    reason: str = Field(pattern=CODE_PATTERN, description="stable reason code (DESIGN.md)")
    scheme: str = Field(pattern=CODE_PATTERN)
    subject_hash: Optional[str] = Field(default=None, max_length=128)
    name_masked: Optional[str] = Field(default=None, max_length=200)
    personal: Optional[str] = Field(default=None, max_length=16_384)
    sealed: bool = False
    override_of: Optional[str] = Field(default=None, pattern=UUID_PATTERN)


class Batch(BaseModel):
    device_id: validation.DeviceId
    batch_id: str = Field(min_length=1, max_length=64)
    entries: list[UploadEntry] = Field(max_length=MAX_ENTRIES_PER_BATCH)


class BatchAck(BaseModel):
    accepted: int = Field(description="entries new to the collector")
    duplicates: int = Field(description="entries it already had (a resent batch)")
    batch_id: str
    new_token: Optional[str] = Field(default=None, description=(
        "set when the device's token was rotated (`collector device rotate`): use it from "
        "now on; the old one works until the new one is first used"))


class Enrolment(BaseModel):
    device_id: validation.DeviceId
    code: str = Field(min_length=4, max_length=64)


class EnrolmentAck(BaseModel):
    device_id: str
    token: str
    venue_code: Optional[str] = Field(default=None, description="the venue this device logs for: the kiosk takes it")


class TracePerson(BaseModel):
    id: str
    scanned_at: datetime
    venue_code: str
    device_id: str
    outcome: str
    reason: str
    subject_hash: Optional[str]
    name_masked: Optional[str]
    personal: Optional[str]
    sealed: bool          # sealed to the collector's key by the kiosk
    opened: bool          # ... and opened here with the collector's seal key
    is_case: bool


class TracingKey(BaseModel):
    key: str  # hex of 32 bytes


class TraceAnswer(BaseModel):
    venue: Optional[str]
    windows: list[dict[str, Any]]
    count: int
    people: list[TracePerson]


# --- auth ------------------------------------------------------------------------

bearer = HTTPBearer(auto_error=False, description="device token from POST /v1/devices, or the admin token")


def _unauthorised(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def _device_from_header(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorised("a device token is required (Authorization: Bearer ...)")
    if "collector.device" in request.scope:  # checked before the body was read
        return request.scope["collector.device"]
    device = request.app.state.store.device_for_token(token.strip())
    if device is None:
        raise _unauthorised("unknown or revoked device token")
    request.scope["collector.device"] = device
    return device


def device_auth(request: Request,
                creds: Annotated[Optional[HTTPAuthorizationCredentials], Depends(bearer)]) -> str:
    return _device_from_header(request)


def admin_auth(request: Request,
               creds: Annotated[Optional[HTTPAuthorizationCredentials], Depends(bearer)]) -> None:
    """The admin token as a bearer token, or as the password of HTTP Basic auth (any user
    name), so staff can open the report page in a browser, which then asks for it."""
    import base64
    import binascii
    import hmac

    challenge = {"WWW-Authenticate": 'Basic realm="collector", charset="UTF-8"'}
    expected = request.app.state.config.admin_token
    if not expected:
        raise HTTPException(401, "no admin token is configured on this collector (COLLECTOR_ADMIN_TOKEN)",
                            headers=challenge)
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    given = ""
    if scheme.lower() == "bearer":
        given = value.strip()
    elif scheme.lower() == "basic":
        try:
            given = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            given = ""
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(401, "the admin token is required (Bearer, or as the Basic auth password)",
                            headers=challenge)


# --- the app ------------------------------------------------------------------------

def create_app(store: Store, config: CollectorConfig | None = None, *,
               clock: Callable[[], datetime] = utcnow, publisher: Any = None,
               reader: Store | None = None) -> FastAPI:
    """Build the API around an open Store. `clock` is injectable for tests; `publisher`
    is the publishing key (else `config.publisher_key_file`, else none: documents are
    served as they were signed elsewhere, and nothing is re-signed). `reader`: a Store on
    a read replica for reports and tracing (else `config.read_db_url`, else `store`)."""
    cfg = config or CollectorConfig(db_url=store.url)
    if reader is None and cfg.read_db_url:
        reader = Store(cfg.read_db_url, create=False)
    if reader is not None:
        # What reads would otherwise make on first use is made on the primary, so the
        # (read-only) replica has it: the tracing key and each module's tables.
        from collector import declarations, delivery, fleet, roster, venues

        store.tracing_key()
        for module in (declarations, delivery, fleet, roster, venues):
            module.ensure_tables(store.engine)
    reads = reader or store
    if publisher is None and cfg.publisher_key_file:
        publisher = publish_mod.load_signing_key(cfg.publisher_key_file)
    app = FastAPI(title="Kiosk collector", version="1",
                  description="Receives check-in kiosk logs exactly once; reports and tracing "
                              "for the health department. Times are UTC (ISO 8601); report days "
                              "are Vietnam local time (UTC+7).")
    app.state.store = store
    app.state.config = cfg
    # Body limits off the event loop, enrolment rate limits, no-store, no CDN docs, every
    # status in the OpenAPI document (collector.hardening). Authenticate an upload before
    # its body is read: no token means 401, whatever the body.
    hardening.install(app, cfg, engine=store.engine, clock=clock, documents=DOCUMENTS,
                      pre_auth={("POST", "/v1/batches"): _device_from_header})

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers and the database is reachable."""
        store.ping()  # not a count: that read a province's entries on every probe
        return {"status": "ok"}

    @app.post("/v1/devices", response_model=EnrolmentAck, tags=["devices"],
              responses={401: {"description": hardening.ENROL_REFUSED}},
              dependencies=[Depends(hardening.enrol_rate_limit)])
    def enrol(body: Enrolment) -> EnrolmentAck:
        """Trade a one-time enrolment code (from `collector enrol-code`) for a device token."""
        try:
            token, venue = store.enrol_device(body.device_id, body.code, now=clock())
        except EnrolError:
            raise hardening.enrol_refused() from None  # one answer: no oracle for guessers
        return EnrolmentAck(device_id=body.device_id, token=token, venue_code=venue)

    @app.post("/v1/batches", response_model=BatchAck, response_model_exclude_none=True, tags=["devices"],
              openapi_extra={"x-content-encoding": "gzip"},
              responses={401: {"description": "no, bad or revoked device token"},
                         403: {"description": "another device's entries, or entries for another "
                                              "venue than the device's, or at an impossible time"},
                         413: {"description": "body too large (compressed or decompressed)"}})
    def post_batch(batch: Batch, request: Request, device: Annotated[str, Depends(device_auth)]) -> BatchAck:
        """Upload a batch of entries (gzip JSON, `Content-Encoding: gzip`). Idempotent on each
        entry's UUID: a resent batch adds nothing and is acknowledged with its duplicates.
        The person key of each entry is derived here from its sealed identifier."""
        from collector.devices import binding_refusals
        from collector.tracing import person_key
        from kiosk.model import UNVERIFIED_REASONS

        token = request.headers.get("authorization", "").partition(" ")[2].strip()
        auth = store.authenticate(token)
        if auth is None or auth.device_id != device:
            raise _unauthorised("unknown or revoked device token")
        if batch.device_id != device:
            raise HTTPException(403, f"this token belongs to {device!r}, not {batch.device_id!r}")
        others = sorted({e.device_id for e in batch.entries} - {device})
        if others:
            raise HTTPException(403, f"entries of another device ({', '.join(others)}) in {device!r}'s batch")
        validation.check_entry_times(batch.entries, clock())
        refused = binding_refusals(batch.entries, auth, now=clock())
        if refused:
            store.record_refusal(device, f"{len(refused)} entries refused; first: {refused[0]['msg']}", now=clock())
            raise HTTPException(403, refused)
        rows = [e.model_dump() for e in batch.entries]
        key = store.tracing_key()
        for row in rows:
            if row["reason"] in UNVERIFIED_REASONS:
                # Whatever a device sends with a failed credential names no one here.
                row.update(personal=None, sealed=False, name_masked=None)
            row["subject_hash"] = person_key(row, seal_private_key=cfg.seal_private_key, tracing_key=key)
        result = store.insert_batch(rows, batch_id=batch.batch_id, now=clock())
        new_token = store.rotate_token(device, token) if auth.rotate else None
        return BatchAck(accepted=result.accepted, duplicates=result.duplicates, batch_id=batch.batch_id,
                        new_token=new_token)

    def _serve_document(name: str, request: Request) -> Response:
        if publisher is not None:
            publish_mod.refresh_due(store, name, key=publisher, now=clock())
        doc = store.document(name)
        if doc is None:
            raise HTTPException(404, f"no {name} published yet")
        if doc.content_type != SIGNED_CONTENT_TYPE:  # a row stored before documents were signed
            raise HTTPException(404, f"no signed {name} published yet (collector publish {name} FILE)")
        headers = {"ETag": doc.etag, "Cache-Control": "no-cache",
                   "Last-Modified": doc.updated_at.strftime("%a, %d %b %Y %H:%M:%S GMT")}
        if _etag_matches(request.headers.get("if-none-match"), doc.etag):
            return Response(status_code=304, headers=headers)
        return Response(doc.body, media_type=doc.content_type, headers=headers)

    doc_responses = {200: {"description": "the signed envelope (application/cose)",
                           "headers": {"ETag": {"schema": {"type": "string"}}}},
                     304: {"description": "unchanged since the ETag in If-None-Match"},
                     404: {"description": "nothing published yet"}}

    def _document_route(name: str) -> Callable:
        def get_document(request: Request, device: Annotated[str, Depends(device_auth)]) -> Response:
            return _serve_document(name, request)
        get_document.__doc__ = (f"The {name} document in a COSE_Sign1 envelope signed by the "
                                "publishing key (kiosk.checks.signed), with ETag.")
        return get_document

    # One GET per registered kind of signed document (trust, rules, denylist, revocations, ...).
    for kind in SIGNED_DOCUMENTS.values():
        app.get(f"/v1/{kind.path}", tags=["devices"], responses=doc_responses,
                name=f"get_{kind.name}")(_document_route(kind.name))

    @app.get("/v1/revocations/chunks/{seq}", tags=["devices"],
             responses={404: {"description": "no such chunk"}})
    def get_revocation_chunk(seq: Annotated[int, validation.ROW_NUMBER],
                             device: Annotated[str, Depends(device_auth)]) -> Response:
        """One chunk of 16-byte revocation hashes; its SHA-256 is in the signed index."""
        body = store.revocation_chunk(seq)
        if body is None:
            raise HTTPException(404, f"no revocation chunk {seq}")
        return Response(body, media_type="application/octet-stream",
                        headers={"Cache-Control": "public, max-age=31536000, immutable"})

    @app.put("/v1/{name:document}", tags=["admin"], status_code=204, dependencies=[Depends(admin_auth)],
             responses={400: {"description": "not a valid document, or not signed"},
                        404: {"description": "not a published document"}})
    async def put_document(name: str, request: Request) -> Response:
        """Publish a document (admin). A signed envelope (application/cose) is stored as
        it is, once it verifies with this collector's publishing key if it has one; any
        other body is validated and signed here, which needs `publisher_key_file`."""
        if name not in DOCUMENTS:
            raise HTTPException(404, f"no document {name!r}; one of {', '.join(DOCUMENTS)}")
        body = await request.body()
        if len(body) > MAX_DOCUMENT_BYTES:
            raise HTTPException(413, f"document larger than {MAX_DOCUMENT_BYTES} bytes")
        ctype = request.headers.get("content-type", "application/octet-stream")
        try:
            if ctype.startswith(SIGNED_CONTENT_TYPE):
                if publisher is not None:
                    held = store.document(name)
                    open_document(body, publisher.public_key(), name=name, now=clock(),
                                  held_version=peek(held.body).version + 1 if held else None)
                store.publish(name, body, content_type=SIGNED_CONTENT_TYPE, now=clock())
            elif publisher is None:
                raise HTTPException(400, "this collector holds no publishing key (publisher_key_file): "
                                         "send a signed envelope (Content-Type: application/cose)")
            else:
                publish_mod.publish(store, name, body, key=publisher, now=clock(), content_type=ctype)
        except ValueError as exc:  # TrustError and SignedDocError are ValueErrors
            raise HTTPException(400, f"{name}: {exc}") from None
        return Response(status_code=204)

    # The daily report (page, CSV, XLSX; default today), the venue registry and the
    # officers' tracing page (collector.report_api).
    from collector import report_api

    report_api.install(app, store=store, reader=reads, clock=clock, admin=admin_auth)

    # Heartbeats and the fleet page (collector.fleet).
    from collector import fleet

    fleet.install(app, store=store, clock=clock, admin=admin_auth, device=device_auth)
    from collector import updates

    updates.install(app, store=store, device=device_auth)

    # The citizens' declaration form (/d, /d/{venue}) and the quarantine roster (collector.form).
    from collector import form

    form.install(app, store=store, clock=clock, admin=admin_auth, seal_private_key=cfg.seal_private_key)

    @app.get("/v1/trace", tags=["admin"], response_model=TraceAnswer, dependencies=[Depends(admin_auth)],
             responses={400: {"description": "neither venue and time nor a subject, or both subject forms"}})
    def trace(venue: Annotated[Optional[str], Query(max_length=validation.NAME_MAX)] = None,
              at: Optional[validation.IsoDateTime] = None,
              window_minutes: Annotated[int, Query(ge=1, le=24 * 60)] = 60,
              subject_hash: Annotated[Optional[str], Query(max_length=128)] = None,
              subject: Annotated[Optional[str], Query(max_length=200,
                  description="the case's identifier as kiosks key it: cccd:<12-digit ID>, "
                              "dcc:<UVCI> or hd1:<idh>")] = None) -> TraceAnswer:
        """Who was at `venue` within `window_minutes` of `at`; or, with `subject` (or its
        `subject_hash`), who was near each visit of that person, at any kiosk."""
        from datetime import timedelta

        validation.check_time(("query", "at"), at, clock())
        if subject is not None:
            if subject_hash is not None:
                raise HTTPException(400, "give subject or subject_hash, not both")
            subject_hash = subject_hash_of(reads.tracing_key(), subject.strip())
        try:
            res = trace_query(reads, venue=venue, at=at, window=timedelta(minutes=window_minutes),
                              subject_hash=subject_hash, now=clock())
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        # The rows are the database's own, typed by its columns: each contact becomes a
        # plain dict in TracePerson's field order and pydantic-core writes the JSON in one
        # pass (a model per contact, validated or constructed, cost more than the query
        # for a few thousand contacts; issue 22). tests/test_collector_api.py holds the
        # answer to TraceAnswer.
        people = []
        for r in res.people:
            opened = opened_fields(r, cfg.seal_private_key)
            people.append({k: opened[k] if k in opened else r[k] for k in TracePerson.model_fields})
        answer = {"venue": venue, "windows": [{"start": s, "end": e, "venue": v} for s, e, v in res.windows],
                  "count": len(people), "people": people}
        return Response(pydantic_core.to_json(answer), media_type="application/json")

    return app


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    tags = [t.strip() for t in header.split(",")]
    return any(t.removeprefix("W/") == etag for t in tags)
