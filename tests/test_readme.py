"""The README's quickstart, as written: a fresh virtual environment, its install command, its run command
(no key, no network: the local model answers)."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
WHEEL_CACHES = (Path(os.environ.get("WORKBENCH_CI_CACHE", Path.home() / ".cache" / "workbench-ci")) / "wheels-portable",
                ROOT.parent / "wheels")
"""Where a prebuilt llama-cpp-python wheel is looked for: the cache .ci/run fills, or a wheels/ folder beside the
checkout (building it from source takes about ten minutes). pip's own wheel cache is searched too: following the
README (``pip install -e '.[dev,local]'``) built the wheel once and pip kept it there."""


def prebuilt_llama_wheels() -> list[Path]:
    """Folders holding a llama_cpp_python wheel this machine already built (for ``--find-links``)."""
    found = [d for d in WHEEL_CACHES if any(d.glob("llama_cpp_python-*.whl"))]
    listed = subprocess.run([sys.executable, "-m", "pip", "cache", "list", "--format=abspath", "llama_cpp_python"],
                            capture_output=True, text=True, timeout=60)
    found += sorted({Path(line).parent for line in listed.stdout.splitlines() if line.endswith(".whl")})
    return found


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
    missing = [f"| `{line}` | {text} |" for line, text in commands(build_parser())
               if f"| `{line}` | {text} |" not in reference]
    assert not missing, "add these rows to the README's CLI reference:\n" + "\n".join(missing)


def test_the_cli_reference_has_no_stale_or_repeated_rows() -> None:
    rows = [line for line in section("CLI reference").splitlines() if line.startswith("| `workbench")]
    current = {f"| `{line}` | {text} |" for line, text in commands(build_parser())} | {
        "| `workbench` | the TUI, in a terminal (with piped input or output: the help) |"}
    assert [row for row in rows if row not in current] == []
    assert len(rows) == len(set(rows))


def test_the_quickstart_has_the_install_run_and_development_commands() -> None:
    blocks = quickstart_blocks()
    assert blocks[0].splitlines() == [
        "pip install -e '.[local]'",
        'workbench run --prompt support-reply --var message="I was charged twice for my subscription this month."']
    assert "pip install -e '.[dev,local]' && pytest" in [block.strip() for block in blocks]


@pytest.mark.timeout(2400)
def test_the_quickstart_runs_in_a_fresh_virtual_environment(tmp_path: Path) -> None:
    """Never skipped: with no prebuilt llama_cpp_python wheel anywhere, the install builds it, as the README says."""
    wheels = prebuilt_llama_wheels()
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
    # --no-compile: the run compiles what it imports; byte-compiling every installed package costs ~10 s of CPU
    installed = subprocess.run([str(bin_dir / install[0]), *install[1:], "--prefer-binary", "--no-compile", *links],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=600 if wheels else 1800)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]

    # A new user: a home with no workbench configuration, keys or traces of this machine's user in it.
    # It runs in a copy of this folder's example workspace, as the README says.
    home, work = tmp_path / "home", tmp_path / "work"
    shutil.copytree(ROOT / "prompts", work / "prompts")
    shutil.copy(ROOT / "workbench.toml", work)
    user = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local/share"),
            "XDG_STATE_HOME": str(home / ".local/state"), "XDG_CACHE_HOME": str(home / ".cache")}
    fresh = {k: v for k, v in env.items() if not k.startswith("WORKBENCH_")} | user
    ran = subprocess.run([str(bin_dir / run[0]), *run[1:]], cwd=work, env=fresh, capture_output=True, text=True,
                         timeout=240)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "local/smollm2-135m" in ran.stdout and "Traceback" not in ran.stderr
    lines = ran.stdout.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("│ ─"))  # the metrics above, the reply below
    reply = " ".join(line.strip("│ ") for line in lines[rule + 1:] if line.startswith("│"))
    # The first answer a user sees is on topic: a reply to the customer, not a fluent paragraph about something else.
    assert re.search(r"(?i)charg|sorry|apolog|subscription|refund|payment|billing|bill|account", reply), ran.stdout
    assert "workbench keys set openai" in ran.stderr
