"""`workbench traces ...` over a store that `workbench run` wrote."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from tests.test_cli import json_lines, workbench

LIST_FIELDS = {"id", "time", "target", "status", "ttft_ms", "latency_ms", "input_tokens", "output_tokens",
               "cost_usd", "prompt", "prompt_version"}


def test_run_then_list_show_search_stats_export_prune(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    env = {"WORKBENCH_TRACES": db}
    ran = workbench("run", "Tell me about apricots", "-m", "fake/a@tokens=4", "-m", "fake-ollama/b@tokens=3",
                    "-m", "fake/c@status=401,fail=9,id=tcli", "--tag", "fruit", "--json", env=env)
    assert ran.returncode == 1
    trace_ids = [row["trace_id"] for row in json_lines(ran.stdout)]
    assert all(trace_ids)

    listed = json_lines(workbench("traces", "list", "--json", env=env).stdout)
    assert sorted(r["id"] for r in listed) == sorted(trace_ids)  # type: ignore[type-var]
    assert all(set(r) >= LIST_FIELDS for r in listed)
    assert {r["status"] for r in listed} == {"ok", "error"}
    errors = json_lines(workbench("traces", "list", "--json", "--status", "error", env=env).stdout)
    assert [r["target"] for r in errors] == ["fake/c@status=401,fail=9,id=tcli"]
    assert json_lines(workbench("traces", "list", "--json", "--tag", "fruit", "-n", "2", env=env).stdout).__len__() == 2
    page_two = json_lines(workbench("traces", "list", "--json", "--before", str(listed[1]["id"]), env=env).stdout)
    assert [r["id"] for r in page_two] == [listed[2]["id"]]

    first = str(trace_ids[0])  # calls in the same millisecond share all but the last characters of their ids
    prefix = next(first[:n] for n in range(1, len(first) + 1)
                  if sum(str(t).startswith(first[:n]) for t in trace_ids) == 1)
    shown = json.loads(workbench("traces", "show", prefix, "--json", env=env).stdout)
    assert shown["id"] == trace_ids[0] and shown["request"]["messages"][0]["content"] == "Tell me about apricots"
    assert shown["response"] and shown["attempts"][0]["kind"] == "first" and len(shown["chunk_ms"]) >= 1

    found = json_lines(workbench("traces", "search", "apricots", "--json", env=env).stdout)
    assert len(found) == 3 and not json_lines(workbench("traces", "search", "bananas", "--json", env=env).stdout)

    stats = json_lines(workbench("traces", "stats", "--by", "status", "--json", env=env).stdout)
    assert {r["status"]: r["calls"] for r in stats} == {"error": 1, "ok": 2}

    rows = list(csv.DictReader(io.StringIO(workbench("traces", "export", "--format", "csv", env=env).stdout)))
    assert len(rows) == 3 and "ttft_ms" in rows[0]
    lines = json_lines(workbench("traces", "export", env=env).stdout)
    assert len(lines) == 3 and "response_text" in lines[0]

    pruned = workbench("traces", "prune", "--before", "2999-01-01", env=env)
    assert pruned.returncode == 0 and "deleted 3 calls" in pruned.stdout
    assert not json_lines(workbench("traces", "list", "--json", env=env).stdout)


def test_traces_read_the_log_the_workspace_configures(tmp_path: Path) -> None:
    """``[traces] path`` in workbench.toml: `run` writes there, and `traces` reads there."""
    (tmp_path / "workbench.toml").write_text('[traces]\npath = "logs/calls.db"\n')
    ran = workbench("run", "hi", "-m", "fake/a@tokens=2", "--json", cwd=tmp_path, env={"WORKBENCH_TRACES": ""})
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "logs" / "calls.db").is_file()
    listed = json_lines(workbench("traces", "list", "--json", cwd=tmp_path, env={"WORKBENCH_TRACES": ""}).stdout)
    assert [row["id"] for row in listed] == [json_lines(ran.stdout)[0]["trace_id"]]


def test_traces_errors_are_one_line(tmp_path: Path) -> None:
    db = str(tmp_path / "e.db")
    missing = workbench("traces", "--db", db, "show", "NOPE")
    assert missing.returncode == 2 and "no single call" in missing.stderr and "Traceback" not in missing.stderr
    bad_date = workbench("traces", "--db", db, "prune", "--before", "yesterday-ish")
    assert bad_date.returncode == 2 and "neither a date nor an age" in bad_date.stderr
    bad_search = workbench("traces", "--db", db, "search", '"unbalanced')
    assert bad_search.returncode == 2 and "bad search" in bad_search.stderr
    unwritable = workbench("traces", "--db", "/proc/nope/t.db", "list")
    assert unwritable.returncode == 2 and "cannot open the trace store" in unwritable.stderr


def test_no_trace_flag(tmp_path: Path) -> None:
    env = {"WORKBENCH_TRACES": str(tmp_path / "n.db")}
    ran = workbench("run", "hi", "-m", "fake/a@tokens=2", "--no-trace", "--json", env=env)
    assert json_lines(ran.stdout)[0]["trace_id"] is None
    assert not json_lines(workbench("traces", "list", "--json", env=env).stdout)
