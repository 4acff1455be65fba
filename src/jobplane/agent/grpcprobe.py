"""gRPC probes: one ``grpc.health.v1.Health/Check`` call over cleartext HTTP/2, judged and
worded as kubelet's gRPC prober does (``pkg/probe/grpc``).

Why HTTP/2 by hand (with ``h2``, the python-hyper protocol library) rather than grpcio: the
check is one unary call with a one-field request and a one-field response, and grpcio would be a
7 MB native dependency of every install for it. What the call needs of gRPC is small: a POST to
``/grpc.health.v1.Health/Check`` with ``content-type: application/grpc`` and ``te: trailers``,
the message framed as 1 flag byte + 4 length bytes + protobuf, and the status in the trailers.

Like kubelet's dialer (``grpc.WithBlock``), a connection that cannot be made is retried until
the probe's timeout, which the caller enforces: ``timeout_message`` then says which stage it
was in, as kubelet's messages do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import unquote

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
)
from h2.exceptions import ProtocolError

from jobplane.agent import probes as pr
from jobplane.api.netaddr import join_host_port

METHOD = "/grpc.health.v1.Health/Check"
USER_AGENT = "kube-probe/1.32"
RETRY_DELAY = 0.2  # between connection attempts (grpc-go backs off from 1 s with jitter)
READ_SIZE = 65536

# grpc-go's codes.Code names, by number
CODES = ("OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
         "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
         "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated")
UNIMPLEMENTED, UNAVAILABLE, INTERNAL, UNKNOWN = 12, 14, 13, 2
# grpc.health.v1.HealthCheckResponse.ServingStatus
SERVING_STATUS = ("UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN")
SERVING = 1
# grpc-go's http2ErrConvTab: a stream the server reset (other codes: Internal)
RST_STREAM_CODES = {"CANCEL": 1, "REFUSED_STREAM": UNAVAILABLE, "ENHANCE_YOUR_CALM": 8, "INADEQUATE_SECURITY": 7}
# grpc-go's HTTPStatusConvTab: a response that is no gRPC response
HTTP_STATUS_CODES = {400: INTERNAL, 401: 16, 403: 7, 404: UNIMPLEMENTED, 429: UNAVAILABLE, 502: UNAVAILABLE,
                     503: UNAVAILABLE, 504: UNAVAILABLE}


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"rpc error: code = {code_name(code)} desc = {message}")
        self.code = code
        self.message = message


@dataclass
class Progress:
    """How far a check got, for the message of one cut short by its timeout."""

    connected: bool = False


def code_name(code: int) -> str:
    return CODES[code] if 0 <= code < len(CODES) else f"Code({code})"


def encode_request(service: str) -> bytes:
    """A length-prefixed, uncompressed ``HealthCheckRequest{service}`` (field 1, a string)."""
    data = service.encode()
    message = b""
    if data:
        length, varint = len(data), bytearray()
        while True:
            byte = length & 0x7F
            length >>= 7
            varint.append(byte | (0x80 if length else 0))
            if not length:
                break
        message = b"\x0a" + bytes(varint) + data
    return b"\x00" + len(message).to_bytes(4, "big") + message


def decode_status(body: bytes) -> int:
    """The ``status`` (field 1, a varint) of a length-prefixed ``HealthCheckResponse``; fields
    this version does not know are skipped, as protobuf readers do."""
    if len(body) < 5 or body[0] != 0:
        raise RpcError(INTERNAL, "grpc: failed to unmarshal the received message")
    msg = body[5:5 + int.from_bytes(body[1:5], "big")]
    status, i = 0, 0
    while i < len(msg):
        key, i = _varint(msg, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(msg, i)
            if field == 1:
                status = value
        elif wire == 2:
            size, i = _varint(msg, i)
            i += size
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        else:
            raise RpcError(INTERNAL, "grpc: failed to unmarshal the received message")
    return status


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data):
            raise RpcError(INTERNAL, "grpc: failed to unmarshal the received message")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


async def _connect(host: str, port: int, progress: Progress, sleep: Callable[[float], Awaitable[None]]
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, H2Connection]:
    """A connection whose HTTP/2 preface the server answered, retried until it is."""
    while True:
        writer: asyncio.StreamWriter | None = None
        try:
            reader, writer = await asyncio.open_connection(host, port)
            conn = H2Connection(config=H2Configuration(client_side=True, header_encoding="utf-8"))
            conn.initiate_connection()
            writer.write(conn.data_to_send())
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    raise ConnectionError("connection closed before the server's settings")
                events = conn.receive_data(data)
                writer.write(conn.data_to_send())
                if any(isinstance(e, RemoteSettingsChanged) for e in events):
                    progress.connected = True
                    return reader, writer, conn
        except Exception:  # noqa: BLE001 - refused, reset, not HTTP/2: dial again until the timeout
            if writer is not None:
                writer.close()
        await sleep(RETRY_DELAY)


async def health_check(host: str, port: int, service: str, progress: Progress,
                       sleep: Callable[[float], Awaitable[None]]) -> tuple[pr.Outcome, str]:
    """One Check call, without a deadline of its own (the caller's timeout cancels it)."""
    addr = join_host_port(host, port)
    reader, writer, conn = await _connect(host, port, progress, sleep)
    try:
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":path", METHOD), (":authority", addr),
                                ("content-type", "application/grpc"), ("te", "trailers"),
                                ("user-agent", USER_AGENT)])
        conn.send_data(sid, encode_request(service), end_stream=True)
        writer.write(conn.data_to_send())
        try:
            try:
                status = await _response(reader, writer, conn, sid)
            except ProtocolError as exc:
                raise RpcError(INTERNAL, f"http2 protocol error: {exc}") from None
            except OSError as exc:
                raise RpcError(UNAVAILABLE, f"error reading from server: {exc}") from None
        except RpcError as exc:
            if exc.code == UNIMPLEMENTED:
                return pr.Outcome.FAILURE, ("error: this server does not implement the grpc health protocol "
                                            f"(grpc.health.v1.Health): {exc.message}")
            return pr.Outcome.FAILURE, f"error: health rpc probe failed: {exc}"
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    if status != SERVING:
        name = SERVING_STATUS[status] if 0 <= status < len(SERVING_STATUS) else str(status)
        return pr.Outcome.FAILURE, f'service unhealthy (responded with "{name}")'
    return pr.Outcome.SUCCESS, "service healthy"


async def _response(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: H2Connection,
                    sid: int) -> int:
    """The serving status the response carries, or RpcError with the call's gRPC status."""
    headers: dict[str, str] = {}
    body = bytearray()
    while True:
        data = await reader.read(READ_SIZE)
        if not data:
            raise RpcError(UNAVAILABLE, "error reading from server: EOF")
        for event in conn.receive_data(data):
            if isinstance(event, ResponseReceived | TrailersReceived) and event.stream_id == sid:
                headers.update((str(k), str(v)) for k, v in event.headers)
            elif isinstance(event, DataReceived) and event.stream_id == sid:
                body += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, sid)
            elif isinstance(event, StreamReset) and event.stream_id == sid:
                name = getattr(event.error_code, "name", str(event.error_code))
                raise RpcError(RST_STREAM_CODES.get(name, INTERNAL), f"stream terminated by RST_STREAM with error code: {name}")
            elif isinstance(event, ConnectionTerminated):
                raise RpcError(UNAVAILABLE, f"connection closed by the server ({event.error_code})")
            elif isinstance(event, StreamEnded) and event.stream_id == sid:
                return _status(headers, bytes(body))
        writer.write(conn.data_to_send())


def _status(headers: dict[str, str], body: bytes) -> int:
    http_status = int(headers.get(":status") or 0)
    if "grpc-status" not in headers:
        code = HTTP_STATUS_CODES.get(http_status, UNKNOWN) if http_status != 200 else INTERNAL
        raise RpcError(code, f"unexpected HTTP status code received from server: {http_status}"
                       if http_status != 200 else "server closed the stream without sending trailers")
    code = int(headers["grpc-status"])
    if code != 0:
        raise RpcError(code, unquote(headers.get("grpc-message", "")))
    return decode_status(body)


def timeout_message(host: str, port: int, timeout: float, progress: Progress) -> str:
    if not progress.connected:
        return (f'timeout: failed to connect service "{join_host_port(host, port)}" within {pr.go_duration(timeout)}: '
                "context deadline exceeded")
    return f"timeout: health rpc did not complete within {pr.go_duration(timeout)}"
