"""Client CPU per streamed event: our provider layer vs a raw httpx2 loop vs the official openai SDK.

All three read the same unpaced OpenAI Chat Completions stream from the fake server, which runs in
another process so only client CPU (``time.process_time``) is counted. Prints the median of RUNS
runs per client and the ratios. Target: ours ≤ 25 µs/event and ≥ 5× faster than the SDK.

With ``--tool-calls``, our client only, on each wire that streams tool-call arguments in pieces (OpenAI chat
``delta.tool_calls``, Responses ``function_call_arguments.delta``, Anthropic ``input_json_delta``): µs per event
of a plain text stream and of a stream that is one tool call whose arguments (about five characters a delta, as
a model streams them a token at a time) come in as many deltas, and the ratio. Target: ≤ 1.5×.

    python bench/stream_overhead.py [--tokens 20000] [--runs 7] [--tool-calls]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import httpx2
import openai
from openai.types.chat import ChatCompletionMessageParam

from workbench.core.call_record import collect
from workbench.core.endpoint import Endpoint
from workbench.core.httpclient import new_client
from workbench.core.registry import make_provider, resolve
from workbench.core.request import ChatRequest, ModelRef, Params
from workbench.fakeserver.process import fake_server_process

PROMPT = "Stream as fast as you can."
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": PROMPT}]


async def ours(base: str, model: str, client: httpx2.AsyncClient) -> int:
    endpoint = Endpoint("fake", model, f"{base}/v1", "openai_chat")
    request = ChatRequest.from_prompt(PROMPT, params=Params(max_tokens=1_000_000))
    record = await collect(make_provider(endpoint, client), request, estimate_usage=False)
    assert record.status == "ok", record.error
    return len(record.timing.chunk_ns)


async def raw_httpx(base: str, model: str, client: httpx2.AsyncClient) -> int:
    body = {"model": model, "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True},
            "max_tokens": 1_000_000}
    events, last = 0, b""
    async with client.stream("POST", f"{base}/v1/chat/completions", json=body) as response:
        async for chunk in response.aiter_raw():
            events += (last + chunk).count(b"\n\n")  # an event's blank line may straddle two reads
            last = chunk[-1:]
    return events - 4  # role, finish, usage and [DONE] events carry no text


async def openai_sdk(base: str, model: str, client: httpx2.AsyncClient) -> int:
    sdk = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="bench", max_retries=0, http_client=client)
    stream = await sdk.chat.completions.create(model=model, messages=MESSAGES, stream=True,
                                               stream_options={"include_usage": True}, max_tokens=1_000_000)
    events = 0
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            events += 1
    return events


Client = Callable[[str, str, httpx2.AsyncClient], Awaitable[int]]


async def measure(base: str, tokens: int, runs: int) -> dict[str, list[float]]:
    clients: dict[str, Client] = {"ours": ours, "raw httpx2": raw_httpx, "openai SDK": openai_sdk}
    results: dict[str, list[float]] = {name: [] for name in clients}
    model = f"bench@tokens={tokens}"
    async with new_client() as client:
        for fn in clients.values():  # warm-up: connections, imports, caches
            await fn(base, model, client)
        for _ in range(runs):
            for name, fn in clients.items():
                cpu = time.process_time()
                events = await fn(base, model, client)
                results[name].append((time.process_time() - cpu) / events * 1e6)
                assert events == tokens, (name, events)
    return results


TOOL_WIRES = {"OpenAI chat": "fake", "Responses": "fake-responses", "Anthropic": "fake-anthropic"}
DELTA_CHARS = 5
"""About what a streamed argument delta holds (a token), and what a text token of the fake server holds."""


def form_tool(deltas: int) -> dict[str, object]:
    """A form-filling tool whose call's arguments (every property required) are about ``DELTA_CHARS * deltas``
    characters of JSON: ``"f000001":"f000001-0",`` is 22 characters."""
    names = [f"f{i:06d}" for i in range(max(1, (DELTA_CHARS * deltas - 1) // 22))]
    schema = {"type": "object", "properties": {n: {"type": "string"} for n in names}, "required": names}
    return {"type": "function", "function": {"name": "fill_form", "description": "Fill the form", "parameters": schema}}


async def ours_events(base: str, target: str, request: ChatRequest, client: httpx2.AsyncClient) -> int:
    provider = make_provider(resolve(ModelRef.parse(target), {"WORKBENCH_FAKE_URL": base}), client)
    record = await collect(provider, request, estimate_usage=False)
    assert record.status == "ok", record.error
    return len(record.timing.chunk_ns)


async def measure_tool_calls(base: str, tokens: int, runs: int) -> dict[tuple[str, str], list[float]]:
    """µs/event of our client per (wire, "text" | "tool calls")."""
    text = ChatRequest.from_prompt(PROMPT, params=Params(max_tokens=1_000_000))
    tools = ChatRequest.from_prompt(PROMPT, params=Params(max_tokens=1_000_000, tools=(form_tool(tokens),)))
    streams = {"text": (f"bench@tokens={tokens}", text),
               "tool calls": (f"bench@tokens=0,tools=1,tool_deltas={tokens}", tools)}
    results: dict[tuple[str, str], list[float]] = {}
    async with new_client() as client:
        for wire, provider in TOOL_WIRES.items():
            for kind, (model, request) in streams.items():
                await ours_events(base, f"{provider}/{model}", request, client)  # warm-up
                results[wire, kind] = []
        for _ in range(runs):
            for wire, provider in TOOL_WIRES.items():
                for kind, (model, request) in streams.items():
                    cpu = time.process_time()
                    events = await ours_events(base, f"{provider}/{model}", request, client)
                    results[wire, kind].append((time.process_time() - cpu) / events * 1e6)
                    assert events >= tokens * 0.99, (wire, kind, events)  # tool calls: a few deltas fewer
    return results


def report_tool_calls(tokens: int, runs: int, results: dict[tuple[str, str], list[float]]) -> None:
    print(f"our client CPU per streamed event, {tokens} events per stream, median of {runs} runs")
    worst = 0.0
    for wire in TOOL_WIRES:
        text, calls = (statistics.median(results[wire, kind]) for kind in ("text", "tool calls"))
        worst = max(worst, calls / text)
        spread = "  ".join(f"{kind} {min(results[wire, kind]):.1f}–{max(results[wire, kind]):.1f}"
                           for kind in ("text", "tool calls"))
        print(f"  {wire:<12} text {text:6.1f} µs/event   tool-call deltas {calls:6.1f} µs/event   "
              f"ratio {calls / text:.2f}x   (min–max: {spread})")
    print(f"  target: tool-call deltas within 1.5x of plain text per event: {'met' if worst <= 1.5 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tool-calls", action="store_true",
                        help="compare plain text with tool-call argument deltas (our client, three wires)")
    args = parser.parse_args()
    if args.tool_calls:
        with fake_server_process() as server:
            per_wire = asyncio.run(measure_tool_calls(server.base_url, args.tokens, args.runs))
        report_tool_calls(args.tokens, args.runs, per_wire)
        return
    with fake_server_process() as server:
        base = server.base_url
        results = asyncio.run(measure(base, args.tokens, args.runs))
    medians = {name: statistics.median(v) for name, v in results.items()}
    print(f"client CPU per streamed event, {args.tokens} events per stream, median of {args.runs} runs")
    for name, value in medians.items():
        spread = f"(min {min(results[name]):.1f}, max {max(results[name]):.1f})"
        print(f"  {name:<11} {value:6.1f} µs/event {spread}")
    print(f"  SDK / ours  {medians['openai SDK'] / medians['ours']:.2f}x")
    print(f"  ours / raw  {medians['ours'] / medians['raw httpx2']:.2f}x")
    verdict = medians["ours"] <= 25 and medians["openai SDK"] / medians["ours"] >= 5
    print(f"  target ≤ 25 µs/event and ≥ 5x faster than the SDK: {'met' if verdict else 'NOT met'}")


if __name__ == "__main__":
    main()
