"""``workbench export code --image``: the code reads the attached file from its path and encodes it when it runs
(never inlined), and runs against the fake server on every wire and SDK."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import pytest

from tests.images import png
from tests.test_cli import workbench
from tests.test_codegen import TARGETS, code, env, execute, expected_reply, ws

__all__ = ["env", "ws"]  # the fixtures


@pytest.mark.parametrize(("target", "sdk"), [*((t, False) for t in TARGETS), (TARGETS[0], True), (TARGETS[1], True)])
def test_exported_code_reads_and_sends_the_image(ws: Path, env: dict[str, str], target: str, sdk: bool) -> None:
    image = ws / "chart.png"
    image.write_bytes(png(640, 480))
    source = code(ws, env, "--target", target, "--image", str(image), *(["--sdk"] if sdk else []))
    assert base64.b64encode(image.read_bytes()).decode() not in source
    assert repr(str(image.resolve())) in source and "attached(0)" in source
    assert execute([sys.executable, "-c"], source, env).strip() == expected_reply(ws, env, target)
    image.unlink()  # read when the code runs: without the file it stops
    with pytest.raises(AssertionError, match="FileNotFoundError"):
        execute([sys.executable, "-c"], source, env)


def test_curl_code_with_an_attachment_is_refused(ws: Path) -> None:
    (ws / "chart.png").write_bytes(png(2, 2))
    result = workbench("export", "code", "greet", "--var", "name=Ada", "--target", "openai/gpt-4o", "--lang", "curl",
                       "--image", str(ws / "chart.png"), cwd=ws)
    assert result.returncode == 2 and "curl code cannot read the attached files" in result.stderr
