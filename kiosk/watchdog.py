"""A tiny sd_notify client: tell systemd we are ready, alive, what we do, and stopping.

systemd passes `$NOTIFY_SOCKET` to a `Type=notify` service; each message is one
datagram of `KEY=VALUE` lines. Outside systemd (tests, a laptop) every call is a cheap
no-op that returns False, so the run loop can call them unconditionally.

The run loop pets the watchdog (`ping()`) whenever the scanner loop came round within
the last `SCANNER_STALL_S` (kiosk.appliance): a read that returned a frame, a line, or
nothing after its timeout, or a device fault while the source reopens. A camera that
delivers nothing does not stop the petting (that fault shows on the screen); a read,
decode or journal write that hangs does, so `WatchdogSec=` expires and systemd restarts
the process.

    >>> notifier = Notifier(socket_path=None)   # not under systemd
    >>> notifier.ready()
    False

Module-level helpers use one shared notifier built from the environment:

    from kiosk import watchdog
    watchdog.ready(); watchdog.status("scanning"); watchdog.ping(); watchdog.stopping()
"""

from __future__ import annotations

import logging
import os
import socket
import threading

__all__ = ["Notifier", "ready", "ping", "status", "stopping", "watchdog_interval_s", "ENV_SOCKET"]

log = logging.getLogger(__name__)

ENV_SOCKET = "NOTIFY_SOCKET"
ENV_WATCHDOG_USEC = "WATCHDOG_USEC"
ENV_WATCHDOG_PID = "WATCHDOG_PID"
#: systemd truncates STATUS= in `systemctl status`; keep ours short and readable.
MAX_STATUS_CHARS = 200


class Notifier:
    """Sends sd_notify datagrams to `socket_path` (None: do nothing).

    An abstract socket is written with a leading `@` in the environment and a NUL byte
    on the wire, as systemd does.
    """

    def __init__(self, socket_path: str | None = None) -> None:
        self.socket_path = socket_path or None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._warned = False

    @classmethod
    def from_env(cls) -> "Notifier":
        return cls(os.environ.get(ENV_SOCKET))

    @property
    def enabled(self) -> bool:
        return self.socket_path is not None

    def _address(self) -> str | bytes:
        path = self.socket_path or ""
        if path.startswith("@"):
            return b"\0" + path[1:].encode()
        return path

    def notify(self, message: str) -> bool:
        """Send one raw message (`"READY=1"`). True when it was delivered."""
        if not self.enabled:
            return False
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto(message.encode("utf-8"), self._address())
                return True
            except OSError as exc:
                # Never let a notification failure take the kiosk down; systemd will
                # notice the missing pings by itself. Say so once, not every frame.
                if not self._warned:
                    log.warning("sd_notify to %s failed: %s", self.socket_path, exc)
                    self._warned = True
                return False

    def ready(self) -> bool:
        return self.notify("READY=1")

    def ping(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        line = " ".join(str(text).split())[:MAX_STATUS_CHARS]
        return self.notify(f"STATUS={line}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def __enter__(self) -> "Notifier":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def watchdog_interval_s() -> float | None:
    """How often systemd expects a ping (half of `WatchdogSec=`), or None when no
    watchdog is armed for this process."""
    usec = os.environ.get(ENV_WATCHDOG_USEC)
    pid = os.environ.get(ENV_WATCHDOG_PID)
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1e6 / 2
    except ValueError:
        return None


_default: Notifier | None = None


def _notifier() -> Notifier:
    global _default
    if _default is None or _default.socket_path != (os.environ.get(ENV_SOCKET) or None):
        _default = Notifier.from_env()
    return _default


def ready() -> bool:
    """Startup finished: systemd marks the unit active (and starts the watchdog clock)."""
    return _notifier().ready()


def ping() -> bool:
    """Pet the watchdog. Call only after a frame was really read and processed."""
    return _notifier().ping()


def status(text: str) -> bool:
    """One line shown by `systemctl status kiosk` (e.g. "scanning, 42 today")."""
    return _notifier().status(text)


def stopping() -> bool:
    """Shutdown began (SIGTERM received)."""
    return _notifier().stopping()
