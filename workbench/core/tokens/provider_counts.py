"""Exact input-token counts from the providers that offer an endpoint for it.

Anthropic (``/v1/messages/count_tokens``) and Gemini (``:countTokens``) when a key (or a base URL)
is configured; vLLM's and llama.cpp's ``/tokenize`` on local servers. Any failure (no key, no
network, an error) simply leaves that target to the offline estimate: counting never blocks on the
network longer than a short timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import httpx2

from workbench.core.errors import WorkbenchError
from workbench.core.httpclient import new_client
from workbench.core.network import Network
from workbench.core.registry import ProviderSpec, make_provider, resolve
from workbench.core.request import ChatRequest, ModelRef

COUNT_TIMEOUT = httpx2.Timeout(5.0, connect=2.0)


async def count_with_providers(request: ChatRequest, targets: Sequence[str], env: Mapping[str, str],
                               client: httpx2.AsyncClient, *, raw: bool = False,
                               providers: Mapping[str, ProviderSpec] | None = None) -> dict[str, int]:
    """``{target: exact input tokens}`` for the targets whose provider could count them."""

    async def one(target: str) -> tuple[str, int | None]:
        try:
            provider = make_provider(resolve(ModelRef.parse(target), env, providers), client, COUNT_TIMEOUT)
            return target, await provider.count_tokens(request, raw=raw)
        except WorkbenchError:
            return target, None

    results = await asyncio.gather(*(one(t) for t in targets))
    return {target: count for target, count in results if count is not None}


def provider_counts(request: ChatRequest, targets: Sequence[str], env: Mapping[str, str], *,
                    raw: bool = False, providers: Mapping[str, ProviderSpec] | None = None,
                    network: Network | None = None) -> dict[str, int]:
    """Blocking form for command-line use."""

    async def run() -> dict[str, int]:
        async with new_client(network) as client:
            return await count_with_providers(request, targets, env, client, raw=raw, providers=providers)

    return asyncio.run(run())
