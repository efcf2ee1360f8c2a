"""Messages that point the right way: what a server actually did, where a bad setting came from, and only
commands and flags that exist."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import os
import re
import shlex
import socket
import struct
import sys
from pathlib import Path

import pytest

from tests.test_cli import json_lines, workbench
from workbench.cli import build_parser
from workbench.core.config import load_settings
from workbench.core.errors import ConfigError
from workbench.core.registry import PROVIDERS
from workbench.core.team.target import KEYRING_ENTRY as TEAM_KEYRING_ENTRY

ROOT = Path(__file__).resolve().parents[1]

SUITE = """\
prompts:
  - "Say {{word}} to {{name}}"
targets: [fake/a@tokens=2]
tests:
  - description: own name
    vars: {word: hello, name: Ada}
    assert:
      - type: not-contains
        value: zzzqqq
  - description: no name
    vars: {word: bye}
    assert:
      - type: not-contains
        value: zzzqqq
"""


def test_eval_var_sets_a_variable_in_every_test_over_its_own_value(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    ran = workbench("eval", str(suite), "--var", "name=Grace", "--var", "word=hi", "--report", "json", "--json",
                    cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    prompts = [line.strip() for line in ran.stdout.splitlines() if '"prompt_text"' in line]
    assert prompts == ['"prompt_text": "Say hi to Grace",'] * 2  # every test got the flag's values
    bad = workbench("eval", str(suite), "--var", "oops", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("workbench: --var oops: expected KEY=VALUE")


COMMAND = re.compile(r"`+workbench ([^`{][^`]*)`")
"""A command named in the source (a hint, an error, a docstring): ``workbench ...`` in backticks."""
PATH_VALUES = {"suite", "file", "dir", "to"}
"""Positionals that take a path: a bare word there (`workbench eval runs`) names no file."""


def named_commands() -> list[tuple[str, list[str]]]:
    """Every command the source names, as ``file:line`` and its words (alternatives such as ``list|show`` each
    their own command; what a shell pipe adds after `` | `` left out; ``{placeholders}`` as ``X``)."""
    found = []
    for path in sorted((ROOT / "workbench").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in COMMAND.finditer(line):
                text = re.sub(r"\{[^}]*\}", "X", match[1].split(" | ")[0])
                words = [w for w in shlex.split(text.replace('"', "")) if not w.startswith("[")]
                options = [w.split("|") if "|" in w and not w.startswith("-") else [w] for w in words]
                for choice in itertools.product(*options):
                    found.append((f"{path.relative_to(ROOT)}:{number}", ["workbench", *choice]))
    return found


def help_of(words: list[str]) -> tuple[int, str]:
    """``words --help`` through the command line's parser: its exit code and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as ended:
        build_parser().parse_args([*words[1:], "--help"])
    return int(ended.value.code or 0), out.getvalue() + err.getvalue()


def test_the_source_names_it_finds_commands_to_check() -> None:
    named = {" ".join(words[:3]) for _, words in named_commands()}
    assert {"workbench traces recover", "workbench evals list", "workbench keys set"} <= named


@pytest.mark.parametrize(("where", "words"), named_commands(), ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_every_command_the_source_names_exists(where: str, words: list[str]) -> None:
    """Each subcommand in the path exists, each option is the command's, and a bare word where a file is
    expected looks like a path."""
    bare = [w for w in words if not w.startswith("-")]
    depth = 1
    while depth < len(bare):  # the subcommand path: each word a subcommand of the one before
        code, shown = help_of(bare[:depth + 1])
        assert code == 0, f"{where}: `{' '.join(bare[:depth + 1])}` is not a command: {shown.strip()}"
        if not shown.startswith(f"usage: {' '.join(bare[:depth + 1])} "):
            break  # the word is a value of the command, not a subcommand
        depth += 1
    command = bare[:depth]
    code, shown = help_of(command)
    assert code == 0 and shown.startswith(f"usage: {' '.join(command)} "), f"{where}: {shown}"
    for option in (w.split("=")[0] for w in words if w.startswith("--")):
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", shown), \
            f"{where}: `{' '.join(command)}` has no {option}"
    try:
        parsed = vars(build_parser().parse_known_args(words[1:])[0])
    except SystemExit:  # a mention without the command's required values (``workbench keys set|list``)
        return
    for dest, value in parsed.items():
        if dest in PATH_VALUES and value in bare[depth:] and value != "X":
            assert re.search(r"[./]|^[A-Z]+$", value), f"{where}: `{' '.join(words)}`: {value!r} is not a path"
        if dest == "provider" and value in bare[depth:] and value != "X":
            assert value in PROVIDERS or value.isupper() or value == TEAM_KEYRING_ENTRY, \
                f"{where}: unknown provider {value!r}"


async def _hostile(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kind: str) -> None:
    # The whole request is read first: closing a socket with unread bytes makes the kernel send
    # RST instead of FIN, and "closed" would then be seen as "reset".
    head = await reader.readuntil(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    await reader.readexactly(int(length.group(1)) if length else 0)
    if kind == "oversized-header":
        writer.write(b"HTTP/1.1 200 OK\r\nx-padding: " + b"a" * 200_000 + b"\r\n\r\n")
    elif kind == "garbage":
        writer.write(b"\x00\xff\xfe not \x1b[2J http\r\n\r\n")
    elif kind == "reset":  # RST instead of FIN: SO_LINGER with a zero timeout
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        return
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    writer.close()


@pytest.mark.parametrize(("words", "command"), [
    (["run", "hi", "-m", "fake/a", "--max-tokns", "5"], "workbench run"),
    (["run", "hi", "there"], "workbench run"),
    (["traces", "list", "--jsn"], "workbench traces list"),
    (["keys", "list", "--x"], "workbench keys list"),
    (["--jsn"], "workbench"),
])
def test_a_mistyped_option_points_at_the_help_of_the_command_that_has_the_options(
        words: list[str], command: str) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as ended:
        build_parser(run_only=words[0] == "run").parse_args(words)
    assert ended.value.code == 2
    assert err.getvalue().splitlines()[1:] == [f"  hint: see `{command} --help`"]
    assert err.getvalue().startswith("workbench: unrecognized arguments: ")


@pytest.mark.parametrize(("words", "hint", "named"), [
    (["prompts", "list"], "`workbench prompts --workspace DIR ...`", ["prompts", "--workspace", "WS", "list"]),
    (["sessions", "list"], "`workbench sessions --workspace DIR ...`", ["sessions", "--workspace", "WS", "list"]),
    (["run", "--prompt", "explain", "-m", "fake/a@tokens=2"], "--config DIR/workbench.toml",
     ["run", "--config", "WS/workbench.toml", "--prompt", "explain", "-m", "fake/a@tokens=2"]),
])
def test_outside_a_workspace_the_hint_names_the_option_the_command_takes(
        tmp_path: Path, words: list[str], hint: str, named: list[str]) -> None:
    outside, workspace = tmp_path / "elsewhere", tmp_path / "ws"
    outside.mkdir()
    assert workbench("init", str(workspace)).returncode == 0
    refused = workbench(*words, cwd=outside)
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        "workbench: not inside a workspace (no workbench.toml here or above)",
        f"  hint: run it inside one (`workbench init` makes one), or name one: {hint}"]
    followed = workbench(*(word.replace("WS", str(workspace)) for word in named), cwd=outside)
    assert followed.returncode == 0, followed.stderr


@pytest.mark.parametrize(("kind", "said", "error_class"), [
    ("oversized-header", "sent response headers too large to read", "protocol"),
    ("garbage", "sent a reply that is not HTTP (illegal status line", "protocol"),
    ("reset", "reset the connection before answering", "connection"),
    ("closed", "closed the connection without answering", "connection"),
])
async def test_a_server_that_answers_badly_is_not_called_unreachable(kind: str, said: str, error_class: str) -> None:
    server = await asyncio.start_server(lambda r, w: _hostile(r, w, kind), "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "workbench", "run", "hi", "-m", "openai/x", "--retries", "0", "--json",
            env={**os.environ, "OPENAI_BASE_URL": url}, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(process.communicate(), 60)
    finally:
        server.close()
        await server.wait_closed()
    assert process.returncode == 1
    error = str(json_lines(out.decode())[0]["error"])
    assert error == f"openai/x: {url} {said}" or error.startswith(f"openai/x: {url} {said}"), error
    assert "cannot reach" not in error and "\x1b" not in error
    listed = json_lines(workbench("traces", "list", "--json").stdout)
    assert listed[0]["error_class"] == error_class


def test_a_refused_connection_still_says_cannot_reach(unreachable_port: int) -> None:
    url = f"http://127.0.0.1:{unreachable_port}/v1"
    ran = workbench("run", "hi", "-m", "openai/x", "--retries", "0", "--json", env={"OPENAI_BASE_URL": url})
    assert json_lines(ran.stdout)[0]["error"] == f"openai/x: cannot reach {url} (connection refused)"


@pytest.mark.parametrize(("url", "problem"), [
    ("not a url", "it holds a space"), ("ftp://host/v1", "not an http:// or https:// URL"),
    ("localhost:8000/v1", "not an http:// or https:// URL"), ("https://", "no host"),
])
def test_an_invalid_base_url_says_so_and_names_where_it_came_from(url: str, problem: str) -> None:
    ran = workbench("run", "hi", "-m", "openai/x", "--json", env={"OPENAI_BASE_URL": url, "OPENAI_API_KEY": "sk-x"})
    row = json_lines(ran.stdout)[0]
    assert ran.returncode == 1 and "cannot reach" not in str(row["error"])
    assert str(row["error"]).startswith("openai/x: invalid base URL '") and f"from OPENAI_BASE_URL: {problem}" in \
        str(row["error"])
    assert str(row["attempts"]).count("'kind'") == 1  # not retried: it cannot work


def test_an_invalid_base_url_in_the_configuration_is_its_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text('[defaults]\nmax_tokens = 9\n\n[providers.mylab]\nwire = "openai_chat"\n'
                                             'base_url = "gpu-box:8000/v1"\n')
    ran = workbench("run", "hi", "-m", "mylab/m", cwd=tmp_path)
    assert ran.returncode == 2 and ran.stdout == ""
    assert ran.stderr.splitlines()[0] == (f"workbench: {tmp_path / 'workbench.toml'}:6: providers.mylab.base_url: "
                                          "invalid base URL: not an http:// or https:// URL")


@pytest.mark.parametrize(("text", "line", "key"), [
    ("[defaults]\nmax_tokens = 9\n\n[policy.timeouts]\nconnect = 5\nttft = -1\n", 6, "policy.timeouts.ttft"),
    ("[policy]\nhedge_after_ms = 5\nretries = 3\n", 3, "policy.retries"),
    ('[policy]\nhedge_after_ms = 5\n\n[policy.targets."openai/gpt-4.1-mini".retry]\nbase_s = 1\nmax_retries = "x"\n',
     6, 'policy.targets."openai/gpt-4.1-mini".retry.max_retries'),
    ("[policy.targets.openai]\nfallbacks = 3\n", 2, "policy.targets.openai.fallbacks"),
    ("# policy\n[policy]\ntargets = 5\n", 3, "policy.targets"),
])
def test_a_bad_policy_is_its_file_and_line(tmp_path: Path, text: str, line: int, key: str) -> None:
    path = tmp_path / "workbench.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(path, user_file=tmp_path / "no-user.toml")
    assert str(err.value).startswith(f"{path}:{line}: {key}: ")
    ran = workbench("run", "hi", "-m", "fake/a", cwd=tmp_path)
    assert ran.returncode == 2 and ran.stderr.splitlines()[0].startswith(f"workbench: {path}:{line}: {key}: ")
