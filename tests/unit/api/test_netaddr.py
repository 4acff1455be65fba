"""Go's net.JoinHostPort, the one helper every layer uses for ``host:port``."""

from __future__ import annotations

import pytest

from jobplane.api.netaddr import join_host_port


@pytest.mark.parametrize(("host", "port", "joined"), [
    ("10.0.0.5", 10250, "10.0.0.5:10250"),
    ("node-1.example", "8080", "node-1.example:8080"),
    ("::1", 9, "[::1]:9"),
    ("fd00::1", 1, "[fd00::1]:1"),
    ("fe80::1%eth0", 80, "[fe80::1%eth0]:80"),  # a zone stays inside the brackets
    ("", 80, ":80"),  # no host: every address, as Go writes it
    ("localhost", "http", "localhost:http"),  # a named port (IntOrString) as given
])
def test_join_host_port_as_go_writes_it(host: str, port: int | str, joined: str) -> None:
    assert join_host_port(host, port) == joined
