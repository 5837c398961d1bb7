#!/usr/bin/python3
"""py_httpx_async.py — integration client using httpx's AsyncClient (asyncio + anyio).

Usage: py_httpx_async.py BASE_URL CA_FILE|- SCENARIO. Calls run one after the
other on one AsyncClient (one keep-alive connection); responses are streamed
with aiter_bytes. Exercises the non-blocking socket / memory-BIO-free anyio TLS
path (httpx's async client calls SSL_read before reading the socket).
"""
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xvclient  # noqa: E402

base, ca, scenario = xvclient.parse_args(sys.argv)
import httpx  # noqa: E402


async def agen(pieces):
    for p in pieces:
        yield p


async def main():
    async with httpx.AsyncClient(verify=ca if ca else True, trust_env=False,
                                 timeout=60.0) as client:
        for i, call in enumerate(xvclient.calls_for(scenario), 1):
            t = xvclient.Transcript(i, call)
            content = xvclient.body_bytes(call)
            if call.get("chunked"):
                content = agen(xvclient.body_pieces(call))   # async iterator: sent chunked
            async with client.stream(call["method"], base + call["path"], content=content,
                                     headers=xvclient.request_headers(call)) as r:
                t.head(r.status_code, r.headers.multi_items())
                try:
                    async for chunk in r.aiter_bytes():
                        t.data(chunk)
                except httpx.HTTPError as e:             # the `cut` scenario
                    t.error(e)
            t.end()

asyncio.run(main())
