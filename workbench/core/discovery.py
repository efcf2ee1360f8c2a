"""Local model servers found on this machine: Ollama, LM Studio, llama.cpp's server, vLLM.

Each is probed once, concurrently, with a short timeout (a closed port answers at once; nothing waits
longer than :data:`PROBE_TIMEOUT_S`), at its configured or conventional address (``OLLAMA_HOST``,
``LMSTUDIO_BASE_URL``…). The models it serves become targets such as ``ollama/llama3.2``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx2

from workbench.core.errors import WorkbenchError
from workbench.core.httpclient import new_client
from workbench.core.network import Network
from workbench.core.registry import PROVIDERS, ProviderSpec, make_provider, resolve
from workbench.core.request import ModelRef

LOCAL_PROVIDERS = ("ollama", "lmstudio", "llamacpp", "vllm")
PROBE_TIMEOUT_S = 0.5
DISCOVERY_TIMEOUT_S = 1.5
"""The whole discovery, however the servers behave (a probe that drips bytes cannot hold it up)."""


async def discover_async(env: Mapping[str, str], providers: Mapping[str, ProviderSpec] | None = None,
                         client: httpx2.AsyncClient | None = None, network: Network | None = None) -> list[str]:
    """Targets served by the local servers that answered, in a stable order."""

    async def probe(name: str, http: httpx2.AsyncClient) -> list[str]:
        try:
            endpoint = resolve(ModelRef(provider=name, model="-"), env, providers)
            provider = make_provider(endpoint, http, httpx2.Timeout(PROBE_TIMEOUT_S))
            names = await provider.model_names()
        except WorkbenchError:
            return []
        return [f"{name}/{model}" for model in sorted(names)]

    async def run(http: httpx2.AsyncClient) -> list[str]:
        found = await asyncio.gather(*(probe(n, http) for n in LOCAL_PROVIDERS if n in (providers or PROVIDERS)))
        return [target for targets in found for target in targets]

    if client is not None:
        return await run(client)
    async with new_client(network) as http:
        return await run(http)


def discover(env: Mapping[str, str], providers: Mapping[str, ProviderSpec] | None = None,
             network: Network | None = None) -> list[str]:
    """Blocking form, for the command line (bounded as a whole by :data:`DISCOVERY_TIMEOUT_S`)."""

    async def bounded() -> list[str]:
        try:
            return await asyncio.wait_for(discover_async(env, providers, network=network), DISCOVERY_TIMEOUT_S)
        except TimeoutError:
            return []

    return asyncio.run(bounded())
