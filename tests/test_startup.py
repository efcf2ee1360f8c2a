"""Start-up and exit of ``workbench run`` (see bench/startup.py): what is imported before the request goes
out, which process settles, and that the fast exit loses no result. Nothing here is timed."""

from __future__ import annotations

import json
import os
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
