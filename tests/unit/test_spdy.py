"""SPDY/3 framing for port-forward: header blocks through the dictionary-primed zlib
contexts, data frames, and a whole forwarded connection against a local TCP server."""

from __future__ import annotations

import asyncio
import struct
import zlib

from jobplane import portforward, spdy


def client_syn_stream(deflate, stream_id: int, headers: dict[str, str], fin: bool = False) -> bytes:
    raw = struct.pack(">I", len(headers)) + b"".join(
        struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode() for k, v in headers.items())
    block = deflate.compress(raw) + deflate.flush(zlib.Z_SYNC_FLUSH)
    body = struct.pack(">IIH", stream_id, 0, 0) + block
    return struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, ((1 if fin else 0) << 24) | len(body)) + body


def test_dictionary_and_header_roundtrip():
    assert len(spdy.DICTIONARY) == 1423 and spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options")
    deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, spdy.DICTIONARY)
    codec = spdy.Codec()
    wire = client_syn_stream(deflate, 1, {"streamtype": "error", "port": "80", "requestid": "0"}) + \
        client_syn_stream(deflate, 3, {"streamtype": "data", "port": "80", "requestid": "0"})
    frames = codec.feed(wire[:7]) + codec.feed(wire[7:])  # split mid-header: buffered
    assert [(f.type, f.stream_id, f.headers["streamtype"]) for f in frames] == [(1, 1, "error"), (1, 3, "data")]
    # the server's replies decode with the same dictionary
    reply = codec.syn_reply(3)
    inflate = zlib.decompressobj(zdict=spdy.DICTIONARY)
    assert inflate.decompress(reply[12:]) == b"\x00\x00\x00\x00"
    assert spdy.Codec().feed(spdy.Codec.data(3, b"abc", fin=True))[0].data == b"abc"


async def test_session_forwards_a_connection():
    async def echo(reader, writer):
        data = await reader.read(100)
        writer.write(b"echo:" + data)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sent: list[bytes] = []

    async def send(data: bytes) -> None:
        sent.append(data)

    session = portforward.Session(send, lambda p: asyncio.open_connection("127.0.0.1", p), "web", "uid")
    deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, spdy.DICTIONARY)
    headers = {"port": str(port), "requestid": "7"}
    await session.feed(client_syn_stream(deflate, 1, {"streamtype": "error", **headers}, fin=True))
    await session.feed(client_syn_stream(deflate, 3, {"streamtype": "data", **headers}))
    await session.feed(spdy.Codec.data(3, b"ping"))
    task = next(iter(session.pairs.values())).task
    await asyncio.wait_for(task, 10)
    reader = spdy.Codec()
    frames = reader.feed(b"".join(sent))
    data = b"".join(f.data for f in frames if not f.control and f.stream_id == 3)
    assert data == b"echo:ping"
    assert any(not f.control and f.stream_id == 3 and f.flags & spdy.FLAG_FIN for f in frames)
    server.close()
    await session.close()
