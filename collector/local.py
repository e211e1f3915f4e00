"""The collector served in a background thread on a free loopback port.

For `kiosk demo` (a local collector beside the kiosk) and for tests; a real deployment
runs `collector serve` under systemd.

    >>> from collector.storage import Store
    >>> with LocalCollector(Store("sqlite://")) as running:   # doctest: +SKIP
    ...     running.url
    'http://127.0.0.1:41235'
"""

from __future__ import annotations

import socket
import threading
from datetime import datetime, timezone
from typing import Any

from collector.config import CollectorConfig

__all__ = ["LocalCollector", "START_TIMEOUT_S"]

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


class LocalCollector:
    """uvicorn serving `create_app(store)` on 127.0.0.1 in a daemon thread."""

    def __init__(self, store: Any, config: CollectorConfig | None = None, *, publisher: Any = None,
                 **config_fields: Any) -> None:
        import uvicorn

        from collector.app import create_app

        self.store = store
        self.publisher = publisher  # the publishing key: signs the tracing key, re-signs documents
        self.config = config or CollectorConfig(db_url=store.url, **config_fields)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        from collector.serve import proxy_options

        self.server = uvicorn.Server(uvicorn.Config(create_app(store, self.config, publisher=publisher), log_level="warning",
                                                    lifespan="off", access_log=False, **proxy_options(self.config)))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="collector", daemon=True)
        self.thread.start()
        waiter = threading.Event()
        for _ in range(int(START_TIMEOUT_S * 20)):
            if self.server.started:
                break
            if not self.thread.is_alive():
                raise RuntimeError("collector stopped while starting")
            waiter.wait(0.05)
        else:
            self.close()
            raise RuntimeError(f"collector did not start within {START_TIMEOUT_S:g} s")

    def token(self, device: str, *, venue: str | None = None, since: datetime | None = None) -> str:
        """Enrol `device` at `venue` directly in the store (a one-time code, used at once),
        as if at `since` (default now): it may upload entries from then on."""
        now = since or datetime.now(timezone.utc)
        return self.store.enrol(device, self.store.create_enrol_code(device, now=now, venue=venue), now=now)

    def close(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=STOP_TIMEOUT_S)
        self.sock.close()

    def __enter__(self) -> "LocalCollector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
