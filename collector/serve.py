"""`collector serve`: bind first, then say "listening", then serve with one or N processes.

The socket is bound before anything is printed, so a taken port is one line and exit 2,
never a "listening" line followed by a traceback. With `workers > 1` the bound socket is
shared by N uvicorn worker processes (uvicorn's supervisor restarts one that dies); each
builds its app from the same configuration, passed down as `COLLECTOR_*` variables. The
app holds no state in one process's memory: enrolment rate limits, tokens, the tracing
key and every entry live in the database, so N processes (or N machines behind a load
balancer) answer alike.

    >>> sorted(config_env(CollectorConfig(db_url="sqlite:///c.db", port=9000)).items())
    [('COLLECTOR_DB_URL', 'sqlite:///c.db'), ('COLLECTOR_PORT', '9000')]
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
from typing import Any, Mapping, TextIO

from collector import config as config_mod
from collector.config import CollectorConfig, CollectorConfigError

__all__ = ["serve", "bind", "worker_app", "config_env", "MAX_WORKERS"]

#: More worker processes than this on one machine only adds contention: run more machines.
MAX_WORKERS = 64
BACKLOG = 2048


def config_env(cfg: CollectorConfig) -> dict[str, str]:
    """The `COLLECTOR_*` variables that rebuild `cfg` (fields left at their default are left out)."""
    default = CollectorConfig()
    return {config_mod.ENV_PREFIX + f.name.upper(): str(getattr(cfg, f.name))
            for f in dataclasses.fields(cfg) if getattr(cfg, f.name) != getattr(default, f.name)}


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or CollectorConfigError naming the address and the reason."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not socket.create_server's 0: asyncio sets TCP_NODELAY only on
    # connections whose socket says TCP, and without it every keep-alive answer (headers
    # and body are two writes) waited 40 ms for the client's delayed ACK (issue 22).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise CollectorConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def worker_app() -> Any:
    """uvicorn factory for each worker process: the app from the inherited configuration."""
    from collector.app import create_app
    from collector.storage import Store

    cfg = config_mod.load()
    return create_app(Store(cfg.db_url), cfg)


def proxy_options(cfg: CollectorConfig) -> dict[str, object]:
    """uvicorn's proxy settings from `trusted_proxies`: X-Forwarded-For is read only from
    those peers; without any, never (uvicorn's own default trusts 127.0.0.1, which is the
    README's nginx: any client could then name its own address and void the limits)."""
    from collector.config import proxy_list

    proxies = proxy_list(cfg.trusted_proxies)
    return {"proxy_headers": bool(proxies), "forwarded_allow_ips": proxies or None}


def serve(cfg: CollectorConfig, *, workers: int = 1, tls: Mapping[str, str] | None = None,
          log_level: str = "info", err: TextIO = sys.stderr) -> int:
    """Open the database, bind, announce, serve until SIGTERM/SIGINT."""
    import uvicorn

    from collector.storage import Store

    if not 1 <= workers <= MAX_WORKERS:
        raise CollectorConfigError(f"--workers {workers}: expected 1 to {MAX_WORKERS}")
    tls = dict(tls or {})
    store = Store(cfg.db_url)  # a bad URL or an unreachable database stops here
    try:
        sock = bind(cfg.host, cfg.port)
        port = sock.getsockname()[1]
        scheme = "https" if tls else "http"
        print(f"collector: {store.dialect} database, {workers} process{'es' if workers > 1 else ''}, "
              f"listening on {scheme}://{cfg.host}:{port} (OpenAPI at /openapi.json)", file=err, flush=True)
        if not cfg.admin_token:
            print("collector: no admin token set (COLLECTOR_ADMIN_TOKEN): reports and tracing are closed",
                  file=err, flush=True)
        common = dict(log_level=log_level, access_log=log_level == "debug", **proxy_options(cfg), **tls)
        if workers == 1:
            from collector.app import create_app

            server = uvicorn.Server(uvicorn.Config(create_app(store, cfg), **common))
            server.run(sockets=[sock])  # SIGTERM/SIGINT: graceful shutdown
            return 0
        store.close()
        os.environ.update(config_env(cfg))
        config = uvicorn.Config("collector.serve:worker_app", factory=True, workers=workers, **common)
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[sock]).run()  # restarts a worker that dies
        return 0
    finally:
        store.close()
