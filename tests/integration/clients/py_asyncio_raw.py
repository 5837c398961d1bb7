#!/usr/bin/python3
"""py_asyncio_raw.py — integration client speaking HTTP/1.1 by hand over asyncio streams.

Usage: py_asyncio_raw.py BASE_URL CA_FILE|- SCENARIO. Standard library only.
Why it exists: asyncio's own TLS (asyncio.open_connection(ssl=...), as used by
aiohttp) feeds ciphertext read from the socket into a memory BIO and calls
SSL_read only after bytes arrive — a different I/O model from httpx's anyio
path. All calls of a scenario go over one keep-alive connection; request bodies
are written with Content-Length, or chunked (one write per chunk) for the
chunked_req scenario; the response is parsed here (Content-Length or chunked,
gzip inflated incrementally).
"""
import asyncio
import os
import ssl
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xvclient  # noqa: E402

base, ca, scenario = xvclient.parse_args(sys.argv)
u = urllib.parse.urlsplit(base)


async def read_head(reader):
    """Status and headers of the next final (non-1xx) response."""
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("connection closed before a response")
        status = int(line.split()[1])
        headers = []
        while True:
            h = await reader.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.decode("latin-1").rstrip("\r\n").partition(":")
            headers.append((name, value.strip()))
        if 100 <= status < 200:
            continue
        return status, headers


async def read_body(reader, headers, t):
    hmap = {k.lower(): v for k, v in headers}
    dec = xvclient.GzipDecoder(hmap.get("content-encoding", "") == "gzip")
    if "chunked" in hmap.get("transfer-encoding", "").lower():
        while True:
            size = int((await reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                break
            t.data(dec.feed(await reader.readexactly(size)))
            await reader.readline()
    else:
        left = int(hmap.get("content-length", "0"))
        while left > 0:
            chunk = await reader.read(min(left, 65536))
            if not chunk:
                raise ConnectionError("connection closed mid-body")
            left -= len(chunk)
            t.data(dec.feed(chunk))
    t.data(dec.end())


async def main():
    ctx = ssl.create_default_context(cafile=ca) if ca else None
    host = "%s:%d" % (u.hostname, u.port)
    reader = writer = None
    for i, call in enumerate(xvclient.calls_for(scenario), 1):
        if writer is None:      # first call, or the last one lost its connection
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(u.hostname, u.port, ssl=ctx), 30)
        t = xvclient.Transcript(i, call)
        hdrs = [("Host", host)] + list(xvclient.request_headers(call).items())
        body = xvclient.body_bytes(call)
        if body is not None and call.get("chunked"):
            hdrs.append(("Transfer-Encoding", "chunked"))
        elif body is not None:
            hdrs.append(("Content-Length", str(len(body))))
        head = "%s %s%s HTTP/1.1\r\n%s\r\n" % (
            call["method"], u.path, call["path"],
            "".join("%s: %s\r\n" % kv for kv in hdrs))
        writer.write(head.encode("latin-1"))
        if body is not None and call.get("chunked"):
            for piece in xvclient.body_pieces(call):
                await writer.drain()
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            writer.write(b"0\r\n\r\n")
        elif body is not None:
            writer.write(body)
        await writer.drain()
        status, headers = await asyncio.wait_for(read_head(reader), 60)
        t.head(status, headers)
        try:
            await asyncio.wait_for(read_body(reader, headers, t), 60)
            if any(k.lower() == "connection" and "close" in v.lower() for k, v in headers):
                writer.close()  # e.g. a synthetic 403: reconnect for the next call
                writer = None
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, ssl.SSLError) as e:
            t.error(e)          # the `cut` scenario: reconnect for the next call
            writer.close()
            writer = None
        t.end()
    if writer is None:
        return
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, ssl.SSLError):
        pass

asyncio.run(main())
