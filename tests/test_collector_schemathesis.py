"""Property-based API test: schemathesis generates requests from the collector's own
OpenAPI document (valid and invalid ones) and sends them to the real server (uvicorn on
loopback) as a kiosk (device token), as staff (admin token) and as a stranger (no token),
on SQLite and on PostgreSQL. Every answer must be documented (status, content type,
schema), never a server error, and invalid data must be refused.

Bounded: MAX_EXAMPLES per operation, so the whole file stays well under a minute and a half."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from collector_helpers import ADMIN_TOKEN, ENGINES, RunningCollector, open_store

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

#: Examples per operation, each sent with each of the three auths, on each engine: about
#: 30 operations x 2 engines in well under 90 s on a loaded 2-core machine.
MAX_EXAMPLES = 8


@pytest.fixture(scope="module", params=ENGINES)
def running(request, tmp_path_factory):
    store = open_store(request.param, tmp_path_factory.mktemp(request.param))
    with RunningCollector(store) as collector:
        collector.device_token = collector.token()
        yield collector
    store.close()


def _openapi() -> dict:
    """The OpenAPI document exactly as the server serves it at /openapi.json."""
    from collector.app import create_app
    from collector.config import CollectorConfig
    from collector.storage import Store

    store = Store("sqlite://")
    try:
        return create_app(store, CollectorConfig(db_url=store.url, admin_token=ADMIN_TOKEN)).openapi()
    finally:
        store.close()


#: Bad data may be refused as too large (413) as well as malformed (400, 422).
CONFIG = schemathesis.Config.from_dict({"checks": {"negative_data_rejection": {
    "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]}}})
schema = schemathesis.openapi.from_dict(_openapi(), config=CONFIG)


def test_the_served_document_is_the_one_tested(running):
    import requests

    assert requests.get(running.url + "/openapi.json", timeout=10).json() == schema.raw_schema


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_every_answer_is_documented_and_never_a_server_error(case, running):
    for who, token in (("device", running.device_token), ("admin", ADMIN_TOKEN), ("nobody", None)):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # Every check but "schema-valid data is accepted": the schema cannot say that a
        # scanned_at must be within a day of now, or that a random enrolment code is wrong.
        case.call_and_validate(base_url=running.url, headers=headers, timeout=30,
                               excluded_checks=[positive_data_acceptance])
