"""`collector` as an operator meets it: every bad argument is one line and exit 2, "listening"
is said only once the port is bound, and reading commands refuse a database that does not
exist instead of making an empty one. The real command in its own process."""

from __future__ import annotations

import socket

import pytest

from collector_process import ServerProcess, free_port, run_collector


def _one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("collector: error: ")
    assert "Traceback" not in result.stderr and "listening" not in result.stderr
    return lines[0]


@pytest.mark.parametrize("args, words", [
    (["--port", "abc"], "'abc' is not a port number"),
    (["--port", "70000"], "70000 is not a port number"),
    (["--port", "0"], "0 is not a port number"),
    (["--workers", "0"], "0 is not a number of processes"),
    (["--workers", "many"], "'many' is not a number of processes"),
    (["--db", "nosuchdialect://x"], "database: Can't load plugin"),
    (["--db", "not a url"], "database: Could not parse"),
    (["--log-level", "loud"], "invalid choice: 'loud'"),
])
def test_a_bad_serve_argument_is_one_line_and_exit_2(tmp_path, args, words):
    if "--db" not in args:
        args = [*args, "--db", f"sqlite:///{tmp_path / 'c.db'}"]
    assert words in _one_line_error(run_collector("serve", *args))


def test_an_unreachable_postgresql_is_one_line_and_exit_2():
    port = free_port()  # nothing listens there
    line = _one_line_error(run_collector("serve", "--db", f"postgresql://collector@127.0.0.1:{port}/collector",
                                         "--port", str(free_port()), timeout=120))
    assert "database:" in line and str(port) in line


def test_a_taken_port_is_one_line_and_exit_2_without_listening(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        line = _one_line_error(run_collector("serve", "--db", f"sqlite:///{tmp_path / 'c.db'}", "--port", str(port)))
    assert f"cannot listen on 127.0.0.1:{port}" in line and "in use" in line


def test_listening_is_said_once_the_port_accepts_connections(tmp_path):
    with ServerProcess(f"sqlite:///{tmp_path / 'c.db'}") as server:
        assert f"listening on http://127.0.0.1:{server.port}" in server.first_line
    # ServerProcess reads the line first, then connects: the line came after the bind.


def test_a_short_admin_token_stops_serve_with_one_line(tmp_path):
    line = _one_line_error(run_collector("serve", "--db", f"sqlite:///{tmp_path / 'c.db'}",
                                         "--port", str(free_port()), env={"COLLECTOR_ADMIN_TOKEN": "short"}))
    assert "COLLECTOR_ADMIN_TOKEN" in line and "at least 32" in line


@pytest.mark.parametrize("command", [["report", "--date", "2026-03-02"], ["count"]])
def test_reading_commands_refuse_a_database_that_does_not_exist(tmp_path, command):
    typo = tmp_path / "typo.db"
    line = _one_line_error(run_collector(*command, "--db", f"sqlite:///{typo}"))
    assert str(typo) in line and "does not exist" in line
    assert not typo.exists()


def test_report_reads_an_existing_database(tmp_path):
    db = tmp_path / "c.db"
    with ServerProcess(f"sqlite:///{db}"):
        pass  # serve creates the database
    result = run_collector("report", "--date", "2026-03-02", "--db", f"sqlite:///{db}")
    assert result.returncode == 0 and result.stdout.startswith("date,venue_code,entries")


def test_answers_are_not_held_back_for_the_clients_delayed_ack():
    """uvicorn serves on the socket `collector serve` binds; asyncio turns Nagle off
    (TCP_NODELAY) only where that socket says TCP. With Nagle on, every answer on a
    kept-alive connection (headers, then body: two writes) waited ~40 ms for the client's
    delayed ACK: each kiosk upload and each report page, measured in bench/RESULTS.md."""
    import asyncio

    from collector.serve import bind

    async def accepted_nodelay() -> int:
        loop = asyncio.get_running_loop()
        seen: asyncio.Future = loop.create_future()

        class Accept(asyncio.Protocol):
            def connection_made(self, transport):
                sock = transport.get_extra_info("socket")
                seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

        listener = bind("127.0.0.1", 0)
        server = await loop.create_server(Accept, sock=listener)
        _, writer = await asyncio.open_connection("127.0.0.1", listener.getsockname()[1])
        try:
            return await asyncio.wait_for(seen, 10)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(accepted_nodelay()) == 1
