"""Attachments in prompt files (paths relative to the prompt file's folder) and saved sessions (the paths, read
again when the session runs again)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import prompt_workspace
from tests.images import pdf, png
from tests.test_cli import json_lines, workbench
from workbench.core.prompts import load_prompt_file, to_request
from workbench.core.prompts.model import PromptFileError, dump_prompt
from workbench.core.sessions import load_session_file, session_request

CHART = """\
name: chart
targets: ["fake-anthropic/claude-demo@tokens=4"]
messages:
  - role: user
    content: What does the chart show?
    attachments: [images/chart.png, report.pdf]
"""


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = prompt_workspace(tmp_path, chart=CHART)
    (root / "prompts" / "images").mkdir()
    (root / "prompts" / "images" / "chart.png").write_bytes(png(800, 600))
    (root / "prompts" / "report.pdf").write_bytes(pdf(2))
    return root


def test_a_prompt_files_attachments_are_read_from_its_folder(ws: Path) -> None:
    prompt = load_prompt_file(ws / "prompts" / "chart.yaml")
    assert prompt.messages[0].attachments == ["images/chart.png", "report.pdf"]
    assert "    attachments:\n      - images/chart.png\n      - report.pdf\n" in dump_prompt(prompt)
    request = to_request(prompt, folder=ws / "prompts")
    image, document = request.messages[0].attachments
    assert (image.media_type, image.width, image.height) == ("image/png", 800, 600)
    assert (document.media_type, document.pages) == ("application/pdf", 2)
    assert image.path == str((ws / "prompts" / "images" / "chart.png").resolve())


def test_only_a_user_turn_carries_attachments(tmp_path: Path) -> None:
    text = CHART.replace("role: user", "role: assistant")
    (tmp_path / "chart.yaml").write_text(text)
    with pytest.raises(PromptFileError, match=r"chart.yaml:4: .*a assistant turn cannot carry attachments"):
        load_prompt_file(tmp_path / "chart.yaml")


def test_run_prompt_sends_them_and_a_session_keeps_their_paths(ws: Path) -> None:
    env = {"WORKBENCH_TRACES": str(ws / "traces.db")}
    first = workbench("run", "--prompt", "chart", "--save-session", "look", "--json", cwd=ws, env=env)
    assert first.returncode == 0, first.stderr
    saved = yaml.safe_load((ws / "sessions" / "look.yaml").read_text())
    paths = saved["request"]["messages"][0]["attachments"]
    assert paths == [str((ws / "prompts" / "images" / "chart.png").resolve()),
                     str((ws / "prompts" / "report.pdf").resolve())]
    request, _ = session_request(load_session_file(ws / "sessions" / "look.yaml"))
    assert [a.media_type for a in request.messages[0].attachments] == ["image/png", "application/pdf"]
    again = workbench("run", "--session", "look", "--json", cwd=ws, env=env)
    assert again.returncode == 0, again.stderr
    assert json_lines(again.stdout)[0]["input_tokens"] == json_lines(first.stdout)[0]["input_tokens"]


def test_a_missing_attachment_is_one_line_naming_the_prompt_and_path(ws: Path) -> None:
    (ws / "prompts" / "report.pdf").unlink()
    result = workbench("run", "--prompt", "chart", cwd=ws)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "prompt chart: messages[0].attachments[1]: report.pdf: cannot read the attachment" in result.stderr


def test_an_eval_of_the_prompt_sends_its_attachments(ws: Path, fake_env: dict[str, str]) -> None:
    (ws / "evals").mkdir()
    (ws / "evals" / "look.yaml").write_text("prompts: [chart]\nproviders: ['fake/gpt-4o@tokens=3']\n"
                                            "tests:\n  - assert: [{type: finish-reason, value: stop}]\n")
    (ws / "evals" / "bare.yaml").write_text("prompts: ['What does the chart show?']\n"
                                            "providers: ['fake/gpt-4o@tokens=3']\n"
                                            "tests:\n  - assert: [{type: finish-reason, value: stop}]\n")
    env = {**fake_env, "WORKBENCH_TRACES": str(ws / "traces.db")}
    ran = {name: workbench("eval", f"evals/{name}.yaml", "--json", "--no-cache", cwd=ws, env=env)
           for name in ("look", "bare")}
    for result in ran.values():
        assert result.returncode == 0, result.stderr
    tokens = {name: json_lines(result.stdout)[0]["preflight"]["input_tokens"]  # type: ignore[index]
              for name, result in ran.items()}
    assert tokens["look"] - tokens["bare"] == 765 + 2 * 1500  # the image's tiles and the PDF's pages


def test_a_pdf_to_an_ollama_target_fails_the_eval_at_load(ws: Path, fake_env: dict[str, str]) -> None:
    (ws / "evals").mkdir()
    (ws / "evals" / "look.yaml").write_text("prompts: [chart]\nproviders:\n  - fake/gpt-4o@tokens=3\n"
                                            "  - fake-ollama/llava@tokens=3\n"
                                            "tests:\n  - assert: [{type: finish-reason, value: stop}]\n")
    env = {**fake_env, "WORKBENCH_TRACES": str(ws / "traces.db")}
    result = workbench("eval", "evals/look.yaml", "--json", "--no-cache", cwd=ws, env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stdout == ""
    assert "look.yaml:4: " in result.stderr and "report.pdf: the ollama API takes images only" in result.stderr
    assert not (ws / "traces.db").exists()  # no cell was called
