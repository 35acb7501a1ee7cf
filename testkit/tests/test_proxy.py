"""TcpProxy under churn: connections accepted while it stops or closes leak no socket."""

from __future__ import annotations

import gc
import socket
import threading
import warnings

from llm_common_testkit import TcpProxy


def _listener() -> tuple[socket.socket, threading.Thread]:
    """A target that accepts and holds connections (like a server awaiting a startup packet)."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                break
            held.append(conn)
        for conn in held:
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    return server, thread


def test_connections_racing_stop_and_close_are_all_closed() -> None:
    target, thread = _listener()
    port = target.getsockname()[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        for _ in range(10):
            proxy = TcpProxy("127.0.0.1", port).start()
            clients = [socket.create_connection(("127.0.0.1", proxy.port)) for _ in range(8)]
            proxy.stop()
            proxy.start()
            clients += [socket.create_connection(("127.0.0.1", proxy.port)) for _ in range(8)]
            proxy.close()  # with connections just accepted, their handlers not yet run
            for client in clients:
                client.close()
            del proxy
            gc.collect()  # an unclosed transport or socket warns here, inside the test
    target.close()
    thread.join(timeout=5)
