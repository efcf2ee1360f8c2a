"""Start-up and exit of ``workbench run`` (see bench/startup.py): what is imported before the request goes
out, which process settles, and that the fast exit loses no result. Nothing here is timed."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

from workbench.core.traces.store import TraceStore

HEAVY = ("textual", "rich", "tiktoken", "genai_prices", "jsonschema", "sqlmodel", "workbench.ui", "workbench.figures",
         "workbench.cli.render", "workbench.cli.eval", "workbench.cli.traces", "workbench.cli.tokens",
         "workbench.core.resilience.caller", "workbench.core.traces.writer", "httpx2", "workbench.core.providers.base")
"""Modules `workbench run --json` must not have imported when its request goes out (sqlalchemy is missing
here only because loading the configuration imports the trace store, which imports it). The network child
imports the HTTP client and the wire adapters; this process resolves targets without them."""

PROBE = textwrap.dedent("""
    import json, sys
    from workbench.core import netproc

    seen = {}
    start, race = netproc.NetworkProcess.__init__, netproc.NetworkProcess.race

    def spawned(self, *args, **kwargs):
        seen["config loaded when the child started"] = "workbench.core.config" in sys.modules
        start(self, *args, **kwargs)

    def raced(self, *args, **kwargs):
        seen["imported when the race started"] = sorted(m for m in HEAVY if m in sys.modules)
        return race(self, *args, **kwargs)

    netproc.NetworkProcess.__init__, netproc.NetworkProcess.race = spawned, raced
    from workbench.cli import main

    code = main(ARGV)
    print(json.dumps(seen), file=sys.stderr)
    sys.exit(code)
""")


def probe(argv: list[str], env: dict[str, str],
          cwd: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    code = f"HEAVY = {HEAVY!r}\nARGV = {argv!r}\n" + PROBE
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=cwd,
                            env={**os.environ, **env})
    return result, json.loads(result.stderr.strip().splitlines()[-1])


def test_the_request_goes_out_before_the_heavy_modules_load_and_the_child_starts_first(
        fake_env: dict[str, str], tmp_path: Path) -> None:
    result, seen = probe(["run", "hi", "-m", "fake/x", "-m", "fake-ollama/y@usage=0", "--json"], fake_env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert seen == {"config loaded when the child started": False, "imported when the race started": []}
    assert [json.loads(line)["status"] for line in result.stdout.splitlines()] == ["ok", "ok"]


LAUNCH_PROBE = textwrap.dedent("""
    import json, sys
    from workbench.core import netspawn

    spawn = netspawn.spawn

    def counted(*args, **kwargs):  # the command ends with os._exit: each spawn says what was imported now
        loaded = sorted(m for m in ("workbench.cli", "argparse", "pydantic") if m in sys.modules)
        print("spawn", json.dumps(loaded), file=sys.stderr, flush=True)
        return spawn(*args, **kwargs)

    netspawn.spawn = counted
    sys.argv = ["workbench", *ARGV]
    from workbench.launch import main

    sys.exit(main())
""")


def test_the_entry_point_starts_the_one_network_child_before_the_command_line_is_imported(
        fake_env: dict[str, str], tmp_path: Path) -> None:
    code = f"ARGV = {['run', 'hi', '-m', 'fake/x', '--json']!r}\n" + LAUNCH_PROBE
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env={**os.environ, **fake_env})
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("spawn")] == ["spawn []"]
    assert json.loads(result.stdout)["status"] == "ok"


def test_the_network_child_imports_no_ui_store_or_price_data() -> None:
    code = ("import sys, workbench.core.netchild; "
            "print([m for m in ('textual', 'rich', 'sqlalchemy', 'sqlmodel', 'genai_prices', 'workbench.ui', "
            "'workbench.core.traces.store', 'jsonschema', 'tiktoken', 'yaml') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_an_existing_trace_log_opens_without_the_table_definitions(tmp_path: Path) -> None:
    """sqlmodel and sqlalchemy (~0.15 s to import) build a new log's tables; an existing log never loads them."""
    path = tmp_path / "traces.db"
    TraceStore(path).close()
    code = ("import sys; from pathlib import Path; from workbench.core.traces.store import TraceStore; "
            f"TraceStore(Path({str(path)!r})).close(); "
            "print([m for m in ('sqlmodel', 'sqlalchemy', 'workbench.core.traces.tables') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_every_call_is_traced_and_settled_before_the_fast_exit(fake_env: dict[str, str], tmp_path: Path) -> None:
    """`workbench run` ends without tearing its interpreter down: what it prints and traces is complete,
    usage estimates (made in the calling process) included."""
    targets = [f"{wire}/m{i}" for i, wire in enumerate(["fake", "fake-anthropic", "fake-gemini", "fake-ollama",
                                                         "fake-responses"] * 3)] + ["fake/none@usage=0"]
    flags = [arg for target in targets for arg in ("-m", target)]
    result = subprocess.run([sys.executable, "-m", "workbench", "run", "hi", *flags, "--json"], capture_output=True,
                            text=True, timeout=60, cwd=tmp_path, env={**os.environ, **fake_env})
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["target"] for line in lines] == targets
    assert [line["usage_estimated"] for line in lines] == [False] * 15 + [True]
    assert all(line["output_tokens"] for line in lines)
    store = TraceStore(Path(os.environ["WORKBENCH_TRACES"]))
    try:
        rows = store.page(limit=100)
    finally:
        store.close()
    assert sorted(row["id"] for row in rows) == sorted(str(line["trace_id"]) for line in lines)


CHILD_RACE = textwrap.dedent("""
    import asyncio, json, pickle, sys
    from workbench.core import netchild  # what the network process imports
    from workbench.core.httpclient import new_client
    from workbench.core.race import Race
    from workbench.core.resilience.caller import Caller

    with open(sys.argv[1], "rb") as file:
        message, extra = pickle.loads(file.read())
    race = Race(message.request, message.targets, message.env, message.policies, message.prices, message.providers)

    async def main():
        async with new_client(message.network) as client:
            await race.run(Caller(client), settle=False)

    asyncio.run(main())
    print(json.dumps({"errors": [str(r.error) if r.error else None for r in race.records],
                      "extra": [type(v).__name__ for v in extra],
                      "pydantic": sorted(m for m in sys.modules if m.split(".")[0] in ("pydantic", "pydantic_core"))}))
""")


def test_the_network_child_runs_a_race_without_pydantic(fake_env: dict[str, str], tmp_path: Path) -> None:
    """What crosses the pipe (request, policies, prices, network settings: frozen dataclasses) unpickles and runs
    in the network process without pydantic, whose import and model builds were ~80 ms of its start-up."""
    from decimal import Decimal

    from workbench.core.attachments import AttachedFile, attachment_from_bytes
    from workbench.core.netmessages import StartRace
    from workbench.core.network import resolve_network
    from workbench.core.policy import policies_from
    from workbench.core.pricing import PriceBook, UserPrice
    from workbench.core.reasoning_items import ReasoningItem
    from workbench.core.request import CacheBreakpoints, ChatRequest, Message, Params
    from workbench.core.tool_turns import TurnToolCall

    request = ChatRequest(system="Be brief.", messages=(Message(role="user", content="hi"),),
                          params=Params(max_tokens=20, temperature=0.5, stop=("zz",)),
                          cache=CacheBreakpoints(system=True))
    policies = policies_from({"retry": {"max_retries": 1}, "targets": {"fake": {"timeouts": {"ttft": 30}}}},
                             "workbench.toml")
    prices = PriceBook({"fake/*": UserPrice(input_per_mtok=Decimal(1), output_per_mtok=Decimal(2))})
    targets = ("fake/x", "fake-anthropic/y", "fake-gemini/z", "fake-ollama/w", "fake-responses/v")
    message = StartRace(1, request, targets, fake_env, policies, prices, None, resolve_network(None, env={}))
    extra = (TurnToolCall(id="c1", name="f", arguments='{"a":1}'), ReasoningItem(kind="thinking", signature="s"),
             attachment_from_bytes(b"%PDF-1.4\n1 0 obj\n", "doc.pdf"), AttachedFile(path="a.png", detail="low"))
    path = tmp_path / "race.pickle"
    path.write_bytes(pickle.dumps((message, extra)))
    result = subprocess.run([sys.executable, "-c", CHILD_RACE, str(path)], capture_output=True, text=True,
                            timeout=60, check=True)
    seen = json.loads(result.stdout)
    assert seen == {"errors": [None] * 5, "extra": ["TurnToolCall", "ReasoningItem", "Attachment", "AttachedFile"],
                    "pydantic": []}
