"""A pass-through proxy with nothing else in it: the floor under the gateway's cost.

    python benchmarks/bare_proxy.py --upstream URL --port P --client aiohttp|httpx

Same server stack as the gateway (uvicorn on httptools and uvloop), no detection, no policy, no
usage reading: it forwards the body and the key, and relays the answer chunk by chunk.
`bench_gateway.py --target bare-aiohttp` (or `bare-httpx`) measures it in place of the gateway,
which is how the gateway's upstream client was chosen.
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn

FORWARDED = (b"content-type", b"authorization", b"x-api-key", b"anthropic-version")


def make_app(upstream: str, client: str) -> Any:
    upstream = upstream.rstrip("/")
    state: dict[str, Any] = {}

    async def read_body(receive: Any) -> bytes:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                return body

    async def relay(send: Any, status: int, content_type: str, chunks: Any) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type.encode())]})
        async for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "GET":  # /healthz and /metrics, as the benchmark expects
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        body = await read_body(receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"] if k in FORWARDED}
        url = upstream + scope["path"]
        if client == "httpx":
            import httpx

            if "httpx" not in state:
                state["httpx"] = httpx.AsyncClient(limits=httpx.Limits(max_connections=512,
                                                                       max_keepalive_connections=512))
            response = await state["httpx"].send(state["httpx"].build_request("POST", url, content=body,
                                                                               headers=headers), stream=True)
            try:
                await relay(send, response.status_code, response.headers.get("content-type", ""),
                            response.aiter_raw())
            finally:
                await response.aclose()
        else:
            import aiohttp

            if "aiohttp" not in state:
                state["aiohttp"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))
            async with state["aiohttp"].post(url, data=body, headers=headers) as response:
                await relay(send, response.status, response.headers.get("content-type", ""),
                            response.content.iter_any())

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client", choices=("aiohttp", "httpx"), default="aiohttp")
    args = parser.parse_args()
    uvicorn.run(make_app(args.upstream, args.client), host="127.0.0.1", port=args.port, log_level="warning",
                http="httptools", loop="uvloop", access_log=False)


if __name__ == "__main__":
    main()
