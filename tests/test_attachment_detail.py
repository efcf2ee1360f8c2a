"""An image's detail (``--image-detail low|high|auto``) kept where the file is named: a prompt file's
``attachments:`` entry ``{path, detail}``, the session a run saves, the prompt's export and the editor's save; sent
as OpenAI's ``detail`` and counted by it; a detail on a PDF is one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import prompt_workspace
from tests.images import pdf, png
from tests.test_cli import json_lines, workbench
from workbench.core.errors import ConfigError
from workbench.core.plain_data import as_data
from workbench.core.prompts import load_prompt_file, to_request
from workbench.core.prompts.model import dump_prompt, prompt_message
from workbench.core.sessions import load_session_file, session_request

CHART = """\
name: chart
targets: ["fake/gpt-4o@tokens=4"]
messages:
  - role: user
    content: What does the chart show?
    attachments: [{path: images/chart.png, detail: low}, report.pdf]
"""


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    plain = CHART.replace("{path: images/chart.png, detail: low}", "images/chart.png").replace("chart\n", "plain\n")
    root = prompt_workspace(tmp_path, chart=CHART, plain=plain)
    (root / "prompts" / "images").mkdir()
    (root / "prompts" / "images" / "chart.png").write_bytes(png(1600, 1200))
    (root / "prompts" / "report.pdf").write_bytes(pdf(1))
    return root


def test_a_prompt_files_entry_sets_the_images_detail_and_is_written_back(ws: Path) -> None:
    prompt = load_prompt_file(ws / "prompts" / "chart.yaml")
    image, document = to_request(prompt, folder=ws / "prompts").messages[0].attachments
    assert (image.detail, document.detail) == ("low", None)
    assert "      - path: images/chart.png\n        detail: low\n      - report.pdf\n" in dump_prompt(prompt)
    kept = prompt_message(to_request(prompt, folder=ws / "prompts").messages[0])
    assert [a if isinstance(a, str) else as_data(a) for a in kept.attachments] == [
        {"path": image.path, "detail": "low"}, document.path]


def test_run_sends_it_the_session_keeps_it_and_low_costs_less(ws: Path, fake_env: dict[str, str]) -> None:
    env = {**fake_env, "WORKBENCH_TRACES": str(ws / "traces.db")}
    low = workbench("run", "--prompt", "chart", "--save-session", "look", "--json", cwd=ws, env=env)
    plain = workbench("run", "--prompt", "plain", "--json", cwd=ws, env=env)
    assert low.returncode == 0 and plain.returncode == 0, low.stderr + plain.stderr
    low_in, plain_in = (json_lines(r.stdout)[0]["input_tokens"] for r in (low, plain))
    assert isinstance(low_in, int) and isinstance(plain_in, int) and low_in < plain_in  # low: the base tokens only
    saved = yaml.safe_load((ws / "sessions" / "look.yaml").read_text())
    assert saved["request"]["messages"][0]["attachments"][0] == {
        "path": str((ws / "prompts" / "images" / "chart.png").resolve()), "detail": "low"}
    request, _ = session_request(load_session_file(ws / "sessions" / "look.yaml"))
    assert [a.detail for a in request.messages[0].attachments] == ["low", None]
    again = workbench("run", "--session", "look", "--json", cwd=ws, env=env)
    assert again.returncode == 0, again.stderr
    assert json_lines(again.stdout)[0]["input_tokens"] == low_in


def test_a_detail_on_a_pdf_or_a_bad_value_is_one_line(ws: Path) -> None:
    (ws / "prompts" / "bad.yaml").write_text(CHART.replace("report.pdf]", "{path: report.pdf, detail: high}]")
                                            .replace("name: chart", "name: bad"))
    result = workbench("run", "--prompt", "bad", cwd=ws)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "messages[0].attachments[1]: report.pdf: detail is an image's setting" in result.stderr
    (ws / "prompts" / "worse.yaml").write_text(CHART.replace("detail: low", "detail: tiny").replace("name: chart",
                                                                                                "name: worse"))
    worse = workbench("run", "--prompt", "worse", cwd=ws)
    assert worse.returncode == 2 and "Traceback" not in worse.stderr and "worse.yaml:6" in worse.stderr


def test_a_gemini_target_of_a_prompt_with_a_detail_is_refused(ws: Path) -> None:
    with pytest.raises(ConfigError, match="has no image detail field"):
        from workbench.core.providers.attachments import check_attachments

        request = to_request(load_prompt_file(ws / "prompts" / "chart.yaml"), folder=ws / "prompts")
        check_attachments(request.messages, "gemini", "gemini/gemini-2.5-flash")


def test_export_code_sends_the_detail_and_refuses_it_for_a_wire_without_one(ws: Path) -> None:
    from_file = workbench("export", "code", "chart", "--target", "openai/gpt-4o", cwd=ws)
    assert from_file.returncode == 0, from_file.stderr
    assert "'detail': 'low'" in from_file.stdout
    flag = workbench("export", "code", "plain", "--target", "openai/gpt-4o", "--lang", "curl", "--image",
                     str(ws / "prompts" / "images" / "chart.png"), "--image-detail", "high", cwd=ws)
    assert flag.returncode == 0 and '"detail": "high"' in flag.stdout, flag.stderr
    gemini = workbench("export", "code", "chart", "--target", "gemini/gemini-2.5-flash", cwd=ws)
    assert gemini.returncode == 2 and "Traceback" not in gemini.stderr and "has no image detail field" in gemini.stderr
