"""What the command line shows of a refused reply, a paused turn and a reply's provider blocks: ``run --json`` rows,
``run``'s panes, ``traces show``; the model's text there is stripped of control sequences like any reply."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from tests.test_cli import json_lines, workbench
from workbench.core.call_record import CallRecord, ProviderBlock
from workbench.core.events import FinishReason
from workbench.core.request import ChatRequest
from workbench.core.sessions import parse_session
from workbench.figures import reply_notes

WIRES = ("fake", "fake-responses", "fake-anthropic", "fake-gemini")


def test_run_json_carries_the_refusal_on_every_wire(fake_env: dict[str, str]) -> None:
    args = [a for wire in WIRES for a in ("-m", f"{wire}/r@tokens=5,refusal=1")]
    result = workbench("run", "Say something forbidden", *args, "--json", env=fake_env)
    assert result.returncode == 0, result.stderr
    rows = {str(r["target"]).split("/")[0]: r for r in json_lines(result.stdout)}
    for row in rows.values():
        assert row["status"] == "ok" and row["finish_reason"] == "content_filter"
        assert isinstance(row["refusal"], str) and row["blocks"] == []
    assert rows["fake"]["text"] == rows["fake-responses"]["text"] == ""  # kept out of the text
    assert len(str(rows["fake"]["refusal"]).split()) == 5
    assert (rows["fake-anthropic"]["refusal"], rows["fake-anthropic"]["refusal_category"]) == (
        "This request was refused due to policy.", "cyber")
    assert rows["fake-gemini"]["refusal_category"] == "HARM_CATEGORY_DANGEROUS_CONTENT"


def test_a_plain_reply_has_a_null_refusal_and_no_blocks(fake_env: dict[str, str]) -> None:
    (row,) = json_lines(workbench("run", "Hi", "-m", "fake/a@tokens=3", "--json", env=fake_env).stdout)
    assert row["refusal"] is None and row["refusal_category"] is None and row["blocks"] == []


def test_run_panes_show_a_refusal_and_a_paused_turn(fake_env: dict[str, str]) -> None:
    result = workbench("run", "Look it up", "-m", "fake-anthropic/r@tokens=3,refusal=1",
                       "-m", "fake-anthropic/p@tokens=3,pause=1", env={**fake_env, "COLUMNS": "240"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "refused [cyber]: This request was refused due to policy." in out
    assert "content_filter ⚠ refused" in out and "pause_turn ⏸ paused" in out
    assert "⏸ paused: the provider will continue this turn: re-run to continue" in out
    assert '⚙ server_tool_use web_search: {"query":"Look it up"}' in out
    assert "⚙ web_search_tool_result: " in out and "encrypted_content" not in out


def test_traces_show_keeps_the_refusal_and_the_blocks(fake_env: dict[str, str]) -> None:
    rows = json_lines(workbench("run", "Look it up", "-m", "fake-anthropic/r@tokens=3,refusal=1",
                                "-m", "fake-anthropic/p@tokens=3,pause=1", "--json", env=fake_env).stdout)
    refused, paused = (str(r["trace_id"]) for r in rows)
    shown = workbench("traces", "show", refused, env=fake_env).stdout
    assert "refused [cyber]: This request was refused due to policy." in shown
    stored = json.loads(workbench("traces", "show", refused, "--json", env=fake_env).stdout)
    assert (stored["refusal"], stored["refusal_category"]) == ("This request was refused due to policy.", "cyber")
    stored = json.loads(workbench("traces", "show", paused, "--json", env=fake_env).stdout)
    assert stored["refusal"] is None and stored["blocks"] == rows[1]["blocks"]
    assert [b["type"] for b in stored["blocks"]] == ["server_tool_use", "web_search_tool_result"]
    assert stored["finish_reason"] == "pause_turn" and stored["finish_raw"] == "pause_turn"
    shown = workbench("traces", "show", paused, env=fake_env).stdout
    assert "⚙ server_tool_use web_search" in shown


def test_a_refusal_and_blocks_are_stripped_of_control_sequences() -> None:
    record = CallRecord("t/m", ChatRequest.from_prompt("hi"))
    record.refusal_parts, record.refusal_category = ["no\x1b]52;c;Zm9v\x07 way\x1b[2J"], "cyber\x1b[31m"
    record.blocks = [ProviderBlock("compaction", content_parts=["sum\x1b]0;title\x07mary"])]
    record.finish, record.finish_raw = FinishReason.CONTENT_FILTER, "refusal"
    console = Console(width=200, record=True, force_terminal=True)
    for line in reply_notes(record):
        console.print(line)
    text = console.export_text()
    assert text.startswith("⚙ compaction: sum") and "\nrefused [cyber" in text and "way" in text
    assert "\x1b" not in text and "\x07" not in text


def test_an_evals_output_for_a_refusal_is_its_text(tmp_path: Path, fake_env: dict[str, str]) -> None:
    (tmp_path / "workbench.toml").write_text("", encoding="utf-8")
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / "suite.yaml").write_text(
        'prompts: ["Say something forbidden"]\n'
        'providers: ["fake/r@tokens=4,refusal=1"]\n'
        "tests:\n"
        "  - assert:\n"
        "      - type: is-refusal\n"
        "      - type: javascript\n"
        "        value: \"output.split(' ').length === 4\"\n", encoding="utf-8")
    result = workbench("eval", "evals/suite.yaml", "--json", cwd=tmp_path, env=fake_env)
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[-1]["passes"] == 1


def test_a_saved_session_keeps_the_refusal_and_the_blocks(tmp_path: Path, fake_env: dict[str, str]) -> None:
    (tmp_path / "workbench.toml").write_text("", encoding="utf-8")
    result = workbench("run", "Look it up", "-m", "fake-anthropic/r@tokens=3,refusal=1",
                       "-m", "fake-anthropic/p@tokens=3,pause=1", "--save-session", "odd", "--json",
                       cwd=tmp_path, env=fake_env)
    assert result.returncode == 0, result.stderr
    path = tmp_path / "sessions" / "odd.yaml"
    refused, paused = parse_session(path.read_text(), path).results
    assert (refused.refusal, refused.refusal_category) == ("This request was refused due to policy.", "cyber")
    assert refused.finish_reason == "content_filter" and paused.refusal is None
    assert paused.finish_reason == "pause_turn" and paused.blocks == json_lines(result.stdout)[1]["blocks"]
