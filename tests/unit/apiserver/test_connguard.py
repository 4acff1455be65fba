"""The connection guard's decisions, with fake sockets and a fake monotonic clock."""

from __future__ import annotations

import errno
import logging

from jobplane.apiserver.connguard import ConnectionGuard, effective_limit


class FakeSock:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.shut = False

    def fileno(self) -> int:
        return -1 if self.shut else self.fd

    def shutdown(self, how: int) -> None:
        self.shut = True


class FakeTransport:
    def __init__(self, sock: FakeSock) -> None:
        self.sock = sock

    def get_extra_info(self, name: str):
        return self.sock if name == "socket" else None


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def guard(limit: int = 3, timeout: float = 32.0) -> tuple[ConnectionGuard, Clock]:
    clock = Clock()
    return ConnectionGuard(max_unauthenticated=limit, header_timeout=timeout, monotonic=clock), clock


def test_oldest_unauthenticated_connection_is_closed_beyond_the_limit():
    g, _ = guard(limit=3)
    socks = [FakeSock(10 + i) for i in range(5)]
    for s in socks:
        g.accepted(s)
    assert [s.shut for s in socks] == [True, True, False, False, False]
    assert len(g.pending) == 3 and g.closed_for_limit == 2


def test_authenticated_connections_are_not_counted_nor_closed():
    g, _ = guard(limit=2)
    a, b, c = FakeSock(10), FakeSock(11), FakeSock(12)
    g.accepted(a)
    g.request_seen(FakeTransport(a), authenticated=True)
    g.accepted(b)
    g.accepted(c)
    assert not a.shut and not b.shut and not c.shut
    g.accepted(FakeSock(13))
    assert b.shut and not a.shut


def test_header_timeout_closes_connections_without_a_request():
    g, clock = guard(timeout=32.0)
    idle, public = FakeSock(10), FakeSock(11)
    g.accepted(idle)
    g.accepted(public)
    g.request_seen(FakeTransport(public), authenticated=False)
    clock.t += 31.9
    assert g.sweep() == 0
    clock.t += 0.2
    assert g.sweep() == 1
    assert idle.shut and not public.shut


def test_closed_connections_are_forgotten_and_descriptor_numbers_reused():
    g, _ = guard(limit=2)
    a = FakeSock(10)
    g.accepted(a)
    a.shut = True  # the transport closed it
    b = FakeSock(10)  # same number, new connection
    g.accepted(b)
    g.accepted(FakeSock(11))
    assert not b.shut and len(g.pending) == 2


def test_out_of_descriptors_frees_some_and_logs_once_a_second(caplog):
    g, clock = guard(limit=100)
    socks = [FakeSock(10 + i) for i in range(40)]
    for s in socks:
        g.accepted(s)
    exc = OSError(errno.EMFILE, "Too many open files")
    with caplog.at_level(logging.WARNING, logger="jobplane.apiserver.connguard"):
        for _ in range(10):
            g.accept_failed(exc)
            clock.t += 0.01
        clock.t += 1.0
        g.accept_failed(exc)
    lines = [r for r in caplog.records if "accept failed" in r.getMessage()]
    assert len(lines) == 2
    assert all(r.exc_info is None for r in lines)
    assert "9 more" in lines[1].getMessage()
    assert all(s.shut for s in socks)  # 16 per failure until none was left


def test_effective_limit_is_at_most_half_the_descriptors():
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert effective_limit(10**9) == max(1, soft // 2)
    assert effective_limit(3) == 3
