"""`collector serve` as a real process for tests: a free loopback port, started the way an
operator starts it, waited for until it says "listening", stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]


def collector_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "collector.cli", *args]


def run_collector(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(collector_cmd(*args), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


class ServerProcess:
    """`collector serve --db URL --port P [extra]` in its own process group."""

    def __init__(self, db_url: str, *extra: str, env: dict[str, str] | None = None, cwd: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            collector_cmd("serve", "--db", db_url, "--port", str(self.port), "--log-level", "warning", *extra),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd, start_new_session=True,
            env={**os.environ, **(env or {})})
        self.first_line = self.proc.stderr.readline()
        if "listening" not in self.first_line:
            self.proc.kill()
            raise RuntimeError(f"collector serve did not start: {self.first_line}{self.proc.stderr.read()}")
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # workers may still be importing after the socket is bound
            try:
                if requests.get(self.url + "/healthz", timeout=10).status_code == 200:
                    break
            except requests.RequestException:  # refused, or accepted before a worker is ready
                pass
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError("collector serve never answered /healthz")
            time.sleep(0.1)

    def pids(self) -> list[int]:
        """The server process and its worker processes."""
        out = subprocess.run(["pgrep", "-g", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc.stderr.close()

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def vm_hwm_mib(pid: int) -> float:
    """Peak resident memory of a process (VmHWM in /proc/PID/status), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for {pid}")
