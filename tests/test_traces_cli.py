"""`workbench traces ...` over a store that `workbench run` wrote."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.test_cli import json_lines, workbench

LIST_FIELDS = {"id", "time", "target", "status", "ttft_ms", "latency_ms", "input_tokens", "output_tokens",
               "cost_usd", "prompt", "prompt_version"}


def traced(*args: str, env: dict[str, str]) -> list[dict[str, object]]:
    """`workbench run ... --json` that must succeed with every call traced: its rows."""
    ran = workbench("run", *args, "--json", env=env)
    rows = json_lines(ran.stdout)
    assert ran.returncode == 0 and rows and all(row["trace_id"] for row in rows), (ran.returncode, ran.stderr)
    return rows


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
    lower = workbench("traces", "list", "--json", "--before", str(listed[1]["id"]).lower(), env=env)
    assert [r["id"] for r in json_lines(lower.stdout)] == [listed[2]["id"]]
    for not_an_id in ("7d", "2026-11-01"):  # prune's --before takes these; list's takes an id
        refused = workbench("traces", "list", "--before", not_an_id, env=env)
        assert refused.returncode == 2 and refused.stdout == ""
        assert refused.stderr.splitlines() == [
            f"workbench: argument --before: {not_an_id}: not a call id (26 characters, as `workbench traces list` "
            "prints them); a date or an age goes to --until", "  hint: see `workbench traces list --help`"]

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
    bad_search = workbench("traces", "--db", db, "search", "--fts", '"unbalanced')
    assert bad_search.returncode == 2 and "bad FTS5 query" in bad_search.stderr
    unwritable = workbench("traces", "--db", "/proc/nope/t.db", "list")
    assert unwritable.returncode == 2 and "cannot open the trace store" in unwritable.stderr


def test_no_trace_flag(tmp_path: Path) -> None:
    env = {"WORKBENCH_TRACES": str(tmp_path / "n.db")}
    ran = workbench("run", "hi", "-m", "fake/a@tokens=2", "--no-trace", "--json", env=env)
    assert json_lines(ran.stdout)[0]["trace_id"] is None
    assert not json_lines(workbench("traces", "list", "--json", env=env).stdout)


def test_search_takes_words_as_written_and_fts5_syntax_behind_fts(tmp_path: Path) -> None:
    env = {"WORKBENCH_TRACES": str(tmp_path / "s.db")}
    prompts = ['Rock AND roll: "quoted" col:on pre*fix', "rock or roll NEAR here", "apricots NOT pears"]
    ids = [traced(text, "-m", "fake/a@tokens=2", env=env)[0]["trace_id"] for text in prompts]

    def found(*args: str) -> list[object]:
        result = workbench("traces", "search", *args, "--json", env=env)
        assert result.returncode == 0, result.stderr
        return [row["id"] for row in json_lines(result.stdout)]

    assert found("AND") == [ids[0]]  # an operator alone is a word like any other
    assert found("NOT pears") == [ids[2]]  # every word, in any order, not FTS5's NOT
    assert found("NEAR") == [ids[1]] and found("OR") == [ids[1]]
    assert found('"quoted"') == [ids[0]] and found("col:on") == [ids[0]] and found("pre*") == [ids[0]]
    assert found("rock") == [ids[1], ids[0]]  # newest first
    assert found("--fts", "apricots NOT pears") == [] and found("--fts", "rock NOT here") == [ids[0]]
    assert found("--fts", "apric*") == [ids[2]]
    assert found("--fts", "NEAR(rock here)") == [ids[1]]  # FTS5 NEAR is a function
    nothing = workbench("traces", "search", "kumquat", env=env)  # no table with a header alone
    assert nothing.returncode == 0 and nothing.stdout == "" and nothing.stderr == "workbench: no calls match\n"


@pytest.mark.parametrize("query", ["AND", '"unbalanced', "rock NEAR(", "nosuchcolumn:x"])
def test_an_fts5_syntax_error_is_one_line_and_exit_2(tmp_path: Path, query: str) -> None:
    env = {"WORKBENCH_TRACES": str(tmp_path / "s.db")}
    assert workbench("run", "rock", "-m", "fake/a@tokens=2", "--json", env=env).returncode == 0
    result = workbench("traces", "search", "--fts", query, env=env)
    assert result.returncode == 2 and result.stdout == ""
    first, hint = result.stderr.splitlines()
    assert first.startswith("workbench: bad FTS5 query") and "--fts" in hint and "Traceback" not in result.stderr


def test_a_blank_search_is_refused(tmp_path: Path) -> None:
    result = workbench("traces", "--db", str(tmp_path / "s.db"), "search", "  ")
    assert result.returncode == 2 and result.stderr.startswith("workbench: nothing to search for")


def test_show_lays_a_call_out_for_reading(tmp_path: Path) -> None:
    env = {"WORKBENCH_TRACES": str(tmp_path / "s.db"), "COLUMNS": "120"}
    prompt = "Tell me about \x1b]0;owned title\x07apricots\x1b[2J"
    row = traced(prompt, "-s", "Be brief", "-m", "fake/a@tokens=4,reasoning=2", "--temperature", "0.5",
                 "--tag", "fruit", env=env)[0]
    shown = workbench("traces", "show", str(row["trace_id"]), env=env)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "{'id'" not in text and "\x1b" not in text  # not a Python dict; no escape sequence of the prompt
    lines = text.splitlines()
    assert lines[0].split() == ["id", row["trace_id"]]
    fields = {line.split(maxsplit=1)[0]: line.split(maxsplit=1)[1] for line in lines[:lines.index("")] if line}
    assert fields["target"] == "fake/a@tokens=4,reasoning=2" and fields["status"] == "ok"
    assert fields["tags"] == "fruit" and '"temperature": 0.5' in fields["params"]
    order = [lines.index(f"── {part} ──") for part in ("system", "user", "reasoning", "response", "attempts")]
    assert order == sorted(order)  # fields, then the messages, then the reply
    assert lines[order[1] + 1] == "Tell me about \ufffdapricots\ufffd"
    assert lines[order[3] + 1] == row["text"] and lines[order[0] + 1] == "Be brief"
    assert lines[-1].endswith("content chunks")
