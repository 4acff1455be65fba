"""Runs a container that has ``stdin: true`` or ``tty: true`` so ``kubectl attach`` (and
``kubectl run -it``) can reach it: the container's command runs under this small parent,
which holds its stdin (a pipe, or a pseudo-terminal when ``tty``), copies its output to
this process's stdout/stderr (the container log, as the supervisor collects it) and to
every attached client, and serves attach clients on an abstract unix socket.

Standalone (stdlib only): the supervisor starts it as a file, like the container itself.

    python attachrelay.py NAME [--tty] [--stdin] [--stdin-once] -- ARGV...

Socket frames, both ways: one byte channel (0 stdin, 1 stdout, 2 stderr, 4 resize with
``width,height`` text, 255 end of stdin), four bytes big-endian length, the data. The
relay exits with the command's exit code (128 + signal when a signal ended it).
"""

from __future__ import annotations

import fcntl
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import termios

STDIN, STDOUT, STDERR, RESIZE, CLOSE = 0, 1, 2, 4, 255
HEADER = struct.Struct(">BI")


def frame(channel: int, data: bytes) -> bytes:
    return HEADER.pack(channel, len(data)) + data


def _child_tty() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def main(argv: list[str]) -> int:
    name, flags = argv[0], set()
    rest = argv[1:]
    while rest and rest[0] != "--":
        flags.add(rest.pop(0))
    command = rest[1:]
    tty, want_stdin, once = "--tty" in flags, "--stdin" in flags, "--stdin-once" in flags
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind("\0" + name)
    listener.listen(8)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "accept")
    if tty:
        master, slave = os.openpty()
        proc = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                                preexec_fn=_child_tty)
        os.close(slave)
        stdin_fd: int | None = master
        sel.register(master, selectors.EVENT_READ, ("out", STDOUT, 1))
    else:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE if want_stdin else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stdin_fd = proc.stdin.fileno() if proc.stdin else None
        assert proc.stdout is not None and proc.stderr is not None
        sel.register(proc.stdout, selectors.EVENT_READ, ("out", STDOUT, 1))
        sel.register(proc.stderr, selectors.EVENT_READ, ("out", STDERR, 2))

    def forward(sig: int, _frame: object) -> None:
        try:
            os.killpg(proc.pid, sig) if tty else proc.send_signal(sig)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, forward)
    clients: dict[socket.socket, bytearray] = {}
    attached_once = False
    open_outputs = 1 if tty else 2

    def close_stdin() -> None:
        nonlocal stdin_fd
        if stdin_fd is None:
            return
        if tty:
            os.write(stdin_fd, b"\x04")
        else:
            os.close(stdin_fd)
            stdin_fd = None

    while open_outputs:
        for key, _ in sel.select(timeout=1.0):
            tag = key.data
            if tag == "accept":
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    continue
                if once and attached_once:
                    conn.close()
                    continue
                attached_once = True
                conn.setblocking(True)
                clients[conn] = bytearray()
                sel.register(conn, selectors.EVENT_READ, "client")
            elif tag == "client":
                conn = key.fileobj  # type: ignore[assignment]
                try:
                    data = conn.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(conn)
                    clients.pop(conn, None)
                    conn.close()
                    if once:
                        close_stdin()
                    continue
                buf = clients[conn]
                buf.extend(data)
                while len(buf) >= HEADER.size:
                    channel, size = HEADER.unpack_from(buf)
                    if len(buf) < HEADER.size + size:
                        break
                    payload = bytes(buf[HEADER.size:HEADER.size + size])
                    del buf[:HEADER.size + size]
                    if channel == STDIN and stdin_fd is not None:
                        try:
                            os.write(stdin_fd, payload)
                        except OSError:
                            pass
                    elif channel == RESIZE and tty and stdin_fd is not None:
                        width, _, height = payload.decode().partition(",")
                        fcntl.ioctl(stdin_fd, termios.TIOCSWINSZ,
                                    struct.pack("HHHH", int(height), int(width), 0, 0))
                    elif channel == CLOSE:
                        close_stdin()
            else:
                _, channel, local = tag
                fd = key.fd
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(fd)
                    open_outputs -= 1
                    continue
                os.write(local, data)
                for conn in list(clients):
                    try:
                        conn.sendall(frame(channel, data))
                    except OSError:
                        pass
    code = proc.wait()
    for conn in list(clients):
        conn.close()
    listener.close()
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
