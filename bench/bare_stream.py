"""The floor for ``bench.startup``: a bare httpx2 script that POSTs the same streaming requests as
``workbench run`` (URL, headers and body written by the providers, read from a JSON file) and reads
every stream to its end, concurrently. Nothing but the standard library and httpx2 is imported.

    python bench/bare_stream.py REQUESTS.json
"""

import asyncio
import json
import sys

import httpx2


async def _one(client: httpx2.AsyncClient, request: dict[str, object]) -> int:
    size = 0
    async with client.stream("POST", str(request["url"]), headers=request["headers"],  # type: ignore[arg-type]
                             content=str(request["body"]).encode()) as response:
        response.raise_for_status()
        async for chunk in response.aiter_bytes():
            size += len(chunk)
    return size


async def _main(requests: list[dict[str, object]]) -> None:
    async with httpx2.AsyncClient(timeout=30.0) as client:
        sizes = await asyncio.gather(*(_one(client, r) for r in requests))
    print(json.dumps({"streams": len(sizes), "bytes": sum(sizes)}))


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as fh:
        asyncio.run(_main(json.load(fh)))
