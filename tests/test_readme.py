"""The README's quickstart, as written: a fresh virtual environment, its install command, its run command
(no key, no network: the local model answers)."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.cli import _parser

ROOT = Path(__file__).resolve().parents[1]
WHEEL_CACHES = (Path(os.environ.get("WORKBENCH_CI_CACHE", Path.home() / ".cache" / "workbench-ci")) / "wheels",
                ROOT.parent / "wheels")
"""Where a prebuilt llama-cpp-python wheel is looked for: the cache .ci/run fills, or a wheels/ folder beside the
checkout (building it from source takes about ten minutes)."""


def section(title: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def quickstart_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", section("Quickstart"), re.DOTALL)


def commands(parser: argparse.ArgumentParser, prefix: str = "workbench") -> Iterator[tuple[str, str]]:
    """(command line, one-line help) for every command and subcommand of the parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", str(helps[name])
                yield from commands(sub, f"{prefix} {name}")


def test_the_cli_reference_lists_every_command_with_its_help() -> None:
    reference = section("CLI reference")
    missing = [f"| `{line}` | {text} |" for line, text in commands(_parser())
               if f"| `{line}` | {text} |" not in reference]
    assert not missing, "add these rows to the README's CLI reference:\n" + "\n".join(missing)


def test_the_quickstart_has_the_install_run_and_development_commands() -> None:
    blocks = quickstart_blocks()
    assert blocks[0].splitlines() == ["pip install -e '.[local]'", 'workbench run "Explain SSE in one paragraph"']
    assert "pip install -e '.[dev,local]' && pytest" in [block.strip() for block in blocks]


@pytest.mark.timeout(900)
def test_the_quickstart_runs_in_a_fresh_virtual_environment(tmp_path: Path) -> None:
    wheels = [d for d in WHEEL_CACHES if any(d.glob("llama_cpp_python-*.whl"))]
    if not wheels:
        pytest.skip(f"no prebuilt llama_cpp_python wheel in {' or '.join(map(str, WHEEL_CACHES))}: "
                    "run .ci/run once to build it (about ten minutes)")
    install, run = (shlex.split(line) for line in quickstart_blocks()[0].splitlines())
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    env = {k: v for k, v in os.environ.items()
           if not k.endswith(("_API_KEY", "_BASE_URL")) and k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env |= {"PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",  # no stored keys
            "OLLAMA_HOST": "http://127.0.0.1:9"}  # no local server is found: the local model answers alone

    links = [arg for d in wheels for arg in ("--find-links", str(d))]
    installed = subprocess.run([str(bin_dir / install[0]), *install[1:], "--prefer-binary", *links], cwd=ROOT,
                               env=env, capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]

    ran = subprocess.run([str(bin_dir / run[0]), *run[1:]], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=240)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "local/smollm2-135m" in ran.stdout and "Traceback" not in ran.stderr
    lines = ran.stdout.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("│ ─"))  # the metrics above, the reply below
    reply = " ".join(line.strip("│ ") for line in lines[rule + 1:] if line.startswith("│"))
    assert re.search(r"\w+", reply), ran.stdout
    assert "workbench keys set openai" in ran.stderr
