"""free_port against the real kernel: a child's port must be one no outgoing connection can take."""

from __future__ import annotations

import contextlib
import socket

from loadtests.driver.processes import LOOPBACK, ephemeral_port_range, free_port


def test_free_ports_lie_below_the_ephemeral_range_and_are_never_repeated() -> None:
    low, high = ephemeral_port_range()
    assert 0 < low <= high <= 65535
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    if low > 16000:  # room below the range: every port must come from there
        assert all(port < low for port in ports), [p for p in ports if p >= low][:5]


def test_a_free_port_survives_a_burst_of_outgoing_connections() -> None:
    """The CI failure: the port bind(0) gave was taken by a connection before the server bound it."""
    port = free_port()
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.create_server((LOOPBACK, 0), backlog=512))
        clients = [stack.enter_context(socket.create_connection(listener.getsockname())) for _ in range(200)]
        assert all(client.getsockname()[1] != port for client in clients)
        server = stack.enter_context(socket.socket())
        server.bind((LOOPBACK, port))  # raises if the port was taken
