"""SPDY/3.1 framing, enough for ``pods/portforward``: kubectl 1.32 tunnels a SPDY session
inside a WebSocket (subprotocol ``SPDY/3.1+portforward.k8s.io``) and opens two streams per
forwarded connection (``streamtype`` ``error`` and ``data``, with ``port`` and
``requestID`` headers), as kubelet's port-forward server expects.

Frames (draft 3): a control frame is ``1 | version(15) | type(16) | flags(8) | length(24)``
then its data; a data frame ``0 | stream id(31) | flags(8) | length(24)`` then the bytes.
Header blocks are zlib-compressed with the protocol's dictionary, one compression context
per direction for the whole session. Flow control (WINDOW_UPDATE) is accepted and ignored,
as the Go implementation kubectl uses does.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
VERSION = 3

# The SPDY/3 header dictionary: length-prefixed header names and values, then common text.
_WORDS = (
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
    "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
    "content-base", "content-encoding", "content-language", "content-length", "content-location",
    "content-md5", "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host",
    "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified",
    "location", "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
    "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via",
    "warning", "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url", "public",
    "set-cookie", "keep-alive", "origin",
)
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505203 No"
    "n-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403"
    " Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service UnavailableJan Fe"
    "b Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunke"
    "d,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/"
    "javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()


@dataclass
class Frame:
    """One decoded frame: ``control`` with ``type``, or data for ``stream_id``."""

    control: bool
    type: int = 0
    flags: int = 0
    stream_id: int = 0
    data: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Codec:
    """Bytes in, frames out (``feed``/``frames``); frames in, bytes out (``syn_reply``...)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)

    def feed(self, data: bytes) -> list[Frame]:
        self._buf.extend(data)
        out = []
        while len(self._buf) >= 8:
            length = int.from_bytes(self._buf[5:8], "big")
            if len(self._buf) < 8 + length:
                break
            head, body = bytes(self._buf[:8]), bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            out.append(self._decode(head, body))
        return out

    def _decode(self, head: bytes, body: bytes) -> Frame:
        flags = head[4]
        if not head[0] & 0x80:
            return Frame(False, flags=flags, stream_id=int.from_bytes(head[:4], "big") & 0x7FFFFFFF, data=body)
        ftype = int.from_bytes(head[2:4], "big")
        frame = Frame(True, ftype, flags, data=body)
        if ftype in (SYN_STREAM, SYN_REPLY, HEADERS, RST_STREAM, WINDOW_UPDATE):
            frame.stream_id = int.from_bytes(body[:4], "big") & 0x7FFFFFFF
        if ftype == SYN_STREAM:
            frame.headers = self._headers(body[10:])
        elif ftype in (SYN_REPLY, HEADERS):
            frame.headers = self._headers(body[4:])
        return frame

    def _headers(self, block: bytes) -> dict[str, str]:
        raw = self._inflate.decompress(block)
        count, pos, out = int.from_bytes(raw[:4], "big"), 4, {}
        for _ in range(count):
            n = int.from_bytes(raw[pos:pos + 4], "big")
            name = raw[pos + 4:pos + 4 + n].decode()
            pos += 4 + n
            n = int.from_bytes(raw[pos:pos + 4], "big")
            out[name.lower()] = raw[pos + 4:pos + 4 + n].decode()
            pos += 4 + n
        return out

    def _block(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers)) + b"".join(
            struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
            for k, v in headers.items())
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    @staticmethod
    def _control(ftype: int, flags: int, body: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(body)) + body

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None, fin: bool = False) -> bytes:
        body = struct.pack(">I", stream_id) + self._block(headers or {})
        return self._control(SYN_REPLY, FLAG_FIN if fin else 0, body)

    def rst_stream(self, stream_id: int, status: int) -> bytes:
        return self._control(RST_STREAM, 0, struct.pack(">II", stream_id, status))

    def ping(self, ping_id: int) -> bytes:
        return self._control(PING, 0, struct.pack(">I", ping_id))

    def goaway(self, last_stream: int) -> bytes:
        return self._control(GOAWAY, 0, struct.pack(">II", last_stream, 0))

    @staticmethod
    def data(stream_id: int, data: bytes, fin: bool = False) -> bytes:
        return struct.pack(">II", stream_id, ((FLAG_FIN if fin else 0) << 24) | len(data)) + data
