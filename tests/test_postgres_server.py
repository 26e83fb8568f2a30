"""The PostgreSQL the receiver's tests run against (issue 20) is a real server the tests start and stop: it answers on
its loopback port, keeps its data across a restart, and leaves nothing listening when stopped."""

import socket

from tests.postgres import PostgresServer, require_postgres


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_the_shared_server_answers(postgres: PostgresServer) -> None:
    assert postgres.psql("SELECT 1 + 1") == "2"
    assert postgres.psql("SHOW server_encoding") == "UTF8"
    assert postgres.psql("SELECT inet_server_addr()") == "127.0.0.1"


def test_a_server_of_its_own_keeps_its_data_across_a_restart_and_frees_its_port() -> None:
    server = PostgresServer(require_postgres())
    try:
        server.start()
        server.psql("CREATE TABLE kept (n integer); INSERT INTO kept VALUES (42)")
        server.restart()
        assert server.psql("SELECT n FROM kept") == "42"
    finally:
        server.remove()
    assert not listening(server.port) and not server.root.exists()
