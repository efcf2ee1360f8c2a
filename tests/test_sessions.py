"""Sessions: a race saved as YAML, loaded back, listed, shown and run again against the fake server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import prompt_workspace
from tests.test_cli import json_lines, workbench
from tests.test_run_prompt import GREET
from workbench.core.errors import ConfigError
from workbench.core.prompts import PromptFileError
from workbench.core.request import ChatRequest, Params
from workbench.core.sessions import (
    PromptRef,
    Session,
    dump_session,
    find_session,
    load_session_file,
    load_sessions,
    parse_session,
    save_session,
    session_request,
)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return prompt_workspace(tmp_path, greet=GREET)


def saved(ws: Path, name: str = "first", *extra: str) -> Session:
    result = workbench("run", "--prompt", "greet", "--var", "name=Ada", "-m", "fake/a@tokens=4", "-m",
                       "fake/down@status=400,fail=9,id=sess", "--max-tokens", "20", "--save-session", name, *extra,
                       "--json", cwd=ws)
    assert result.returncode == 1, result.stderr  # the second target fails on purpose
    assert f"session saved: sessions/{name}.yaml" in result.stderr
    return load_session_file(ws / "sessions" / f"{name}.yaml")


def test_a_saved_race_holds_the_request_targets_variables_and_every_outcome(ws: Path) -> None:
    session = saved(ws)
    assert session.prompt == PromptRef(name="greet", version=1)
    assert session.variables == {"name": "Ada", "language": "French"}
    assert session.targets == ["fake/a@tokens=4", "fake/down@status=400,fail=9,id=sess"]
    assert session.request.system == "Be kind."
    assert session.request.messages[0].content == "Say hello to Ada in French."
    assert session.request.params.max_tokens == 20
    ok, failed = session.results
    assert ok.status == "ok" and len(ok.text.split()) == 4 and ok.output_tokens == 4 and ok.finish_reason == "stop"
    assert ok.ttft_ms is not None and ok.latency_ms is not None and ok.trace_id
    assert failed.status == "error" and failed.error and "400" in failed.error and failed.text == ""

    traces = json_lines(workbench("traces", "list", "--session", "first", "--json", cwd=ws).stdout)
    assert {t["id"] for t in traces} == {ok.trace_id, failed.trace_id}
    assert all(t["session_id"] == "first" and t["prompt_version"] == 1 for t in traces)


def test_the_file_is_deterministic_and_round_trips(ws: Path) -> None:
    session = saved(ws)
    path = ws / "sessions" / "first.yaml"
    text = path.read_text()
    assert dump_session(session) == text
    assert parse_session(text, path) == session
    assert save_session(ws, session).read_text() == text
    keys = [line.split(":")[0] for line in text.splitlines() if line and not line.startswith(" ")]
    assert keys == ["name", "prompt", "variables", "targets", "request", "results"]
    assert "usage_estimated" not in text  # defaults are not written


def test_inline_prompt_session_has_no_prompt_ref(ws: Path) -> None:
    request = ChatRequest.from_prompt("hi\nthere", system="sys", params=Params(temperature=0.5, stop=("X",)))
    session = Session.model_validate({"name": "inline", "targets": ["fake/x"], "request": {
        "system": "sys", "messages": [{"role": "user", "content": "hi\nthere"}],
        "params": {"temperature": 0.5, "stop": ["X"]}}})
    path = save_session(ws, session)
    assert "content: |-\n        hi\n        there\n" in path.read_text()  # block style for multi-line text
    loaded = load_session_file(path)
    assert loaded.prompt is None
    assert session_request(loaded) == (request, ["fake/x"])


def test_run_session_runs_the_request_again(ws: Path) -> None:
    first = saved(ws)
    again = workbench("run", "--session", "first", "--json", cwd=ws)
    rows = json_lines(again.stdout)
    assert [r["target"] for r in rows] == first.targets
    assert rows[0]["text"] == first.results[0].text  # the fake server's reply depends on the model and message
    assert (rows[0]["prompt"], rows[0]["prompt_version"]) == ("greet", 1)
    other = workbench("run", "--session", str(ws / "sessions" / "first.yaml"), "-m", "fake-gemini/g@tokens=3",
                      "--json", "--save-session", "second", cwd=ws)
    assert other.returncode == 0, other.stderr
    assert [r["target"] for r in json_lines(other.stdout)] == ["fake-gemini/g@tokens=3"]
    second = load_session_file(ws / "sessions" / "second.yaml")
    assert second.request == first.request and second.prompt == first.prompt and second.targets == [
        "fake-gemini/g@tokens=3"]


def test_sessions_list_and_show(ws: Path) -> None:
    saved(ws)
    (ws / "sessions" / "broken.yaml").write_text("name: broken\ntargets: [fake/x]\nrequest:\n  messages: []\n")
    listed = workbench("sessions", "list", "--json", cwd=ws)
    assert listed.returncode == 1 and "sessions/broken.yaml:4: request.messages" in listed.stderr
    assert json_lines(listed.stdout) == [{"name": "first", "prompt": "greet", "prompt_version": 1,
                                          "targets": ["fake/a@tokens=4", "fake/down@status=400,fail=9,id=sess"],
                                          "calls": 2, "failed": 1, "path": "sessions/first.yaml"}]
    assert "first" in workbench("sessions", "list", cwd=ws).stdout
    shown = workbench("sessions", "show", "first", cwd=ws)
    assert shown.stdout == (ws / "sessions" / "first.yaml").read_text()
    bad = workbench("sessions", "show", "broken", cwd=ws)
    assert bad.returncode == 2 and "broken.yaml:4:" in bad.stderr and "Traceback" not in bad.stderr


def test_malformed_files_give_file_line(ws: Path) -> None:
    folder = ws / "sessions"
    folder.mkdir()
    (folder / "a.yaml").write_text("name: a\ntargets: [fake/x]\nrequest:\n  messages:\n    - role: robot\n"
                                   "      content: hi\n")
    (folder / "b.yaml").write_text("name: b\ntargets: [fake/x\n")
    (folder / "c.yaml").write_text("")
    (folder / "d.yaml").write_text("name: other\ntargets: [fake/x]\nrequest: {messages: [{role: user, content: x}]}\n")
    loaded, errors = load_sessions(ws)
    assert loaded == []
    by_file = {Path(e.path).name: e for e in errors}
    assert by_file["a.yaml"].line == 5 and "request.messages.0.role" in by_file["a.yaml"].problem
    assert by_file["b.yaml"].problem.startswith("YAML syntax error")
    assert by_file["c.yaml"].line == 1 and "session file needs" in str(by_file["c.yaml"].hint)
    assert "does not match the file name" in by_file["d.yaml"].problem
    assert all(isinstance(e, PromptFileError) for e in errors)
    with pytest.raises(ConfigError, match="no session file or session named 'nope'"):
        find_session("nope", ws)
