"""``workbench export code --image``: the code reads the attached file from its path and encodes it when it runs
(never inlined), and runs against the fake server on every wire and SDK; curl code inlines it."""

from __future__ import annotations

import base64
import shutil
import sys
from pathlib import Path

import pytest

from tests.images import png
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


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("bash") is None, reason="needs curl and bash")
@pytest.mark.parametrize("target", TARGETS)
def test_curl_code_inlines_the_image_in_a_body_file_and_runs(ws: Path, env: dict[str, str], target: str) -> None:
    """curl cannot encode a file: its command carries the image as base64 in a body file sent with --data-binary."""
    image = ws / "chart.png"
    image.write_bytes(png(64, 48))
    source = code(ws, env, "--target", target, "--lang", "curl", "--image", str(image))
    assert base64.b64encode(image.read_bytes()).decode() in source and '--data-binary @"$body"' in source
    image.unlink()  # inlined: the command no longer needs the file
    out = execute(["bash", "-c"], source, env)
    assert all(word in out for word in expected_reply(ws, env, target).split())
