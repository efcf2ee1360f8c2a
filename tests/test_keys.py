"""Keys: the keyring (real Secret Service in CI), environment precedence, masking, the no-backend path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keyring
import pytest

from tests.test_cli import json_lines, workbench
from workbench.core import keys
from workbench.core.errors import ConfigError
from workbench.fakeserver.process import FakeServerProcess

SECRET = "sk-keyring-canary-0123456789abcdefWXYZ"


def test_set_list_delete_with_masking_and_env_precedence() -> None:
    keys.set_key("groq", SECRET)
    assert keys.stored_key("groq") == SECRET
    status = {s.provider: s for s in keys.key_statuses({})}
    assert (status["groq"].source, status["groq"].masked) == ("keyring", "…WXYZ")
    env_wins = {s.provider: s for s in keys.key_statuses({"GROQ_API_KEY": "gsk_from_env_key_1111"})}["groq"]
    assert (env_wins.source, env_wins.masked, env_wins.shadowed) == ("environment", "…1111", True)
    assert keys.with_stored_keys({}, ["groq", "openai"]) == {"GROQ_API_KEY": SECRET}
    assert keys.with_stored_keys({"GROQ_API_KEY": "x"}, ["groq"]) == {"GROQ_API_KEY": "x"}
    assert keys.delete_key("groq") and not keys.delete_key("groq")
    assert keys.stored_key("groq") is None


def test_aliases_share_a_key_and_keyless_providers_are_refused() -> None:
    keys.set_key("openai", SECRET)
    assert keys.stored_key("openai-responses") == SECRET
    keys.delete_key("openai")
    with pytest.raises(ConfigError, match="takes no API key"):
        keys.set_key("fake", "x")
    with pytest.raises(ConfigError, match="empty"):
        keys.set_key("openai", "   ")


def test_no_backend_gives_the_options_never_plaintext(monkeypatch: pytest.MonkeyPatch) -> None:
    from keyring.backends.fail import Keyring as FailKeyring

    keyring.set_keyring(FailKeyring())
    with pytest.raises(ConfigError) as err:
        keys.set_key("openai", SECRET)
    assert "no usable keyring backend" in str(err.value)
    assert "Secret Service" in (err.value.hint or "") and "keyrings.alt" in (err.value.hint or "")
    assert keys.with_stored_keys({"A": "b"}, ["openai"]) == {"A": "b"}  # calls still work with env keys


def test_cli_keys_set_list_test_delete(fake_server: FakeServerProcess) -> None:
    env = {"OPENAI_BASE_URL": f"{fake_server.base_url}/v1"}
    stored = workbench("keys", "set", "openai", "--stdin", stdin=SECRET + "\n", env=env)
    assert stored.returncode == 0 and "…WXYZ" in stored.stdout and SECRET not in stored.stdout
    listed = {r["provider"]: r for r in json_lines(workbench("keys", "list", "--json", env=env).stdout)}
    assert listed["openai"]["source"] == "keyring" and listed["openai"]["key"] == "…WXYZ"
    tested = json_lines(workbench("keys", "test", "openai", "--json", env=env).stdout)[0]
    assert tested["ok"] is True and tested["models"] >= 1 and tested["latency_ms"] > 0
    ran = workbench("run", "hi", "-m", "openai/gpt-4o@tokens=2", "--json", env=env)  # the keyring key is used
    assert ran.returncode == 0, ran.stderr
    assert "deleted" in workbench("keys", "delete", "openai").stdout
    keyless = json_lines(workbench("run", "hi", "-m", "openai/gpt-4o", "--json").stdout)[0]
    assert "no API key" in str(keyless["error"]) and "`workbench keys set openai`" in str(keyless["error_hint"])
    unknown = workbench("keys", "set", "opnai", "--stdin", stdin=SECRET + "\n")
    assert unknown.returncode == 2 and "unknown provider 'opnai'" in unknown.stderr
    assert "openai" in unknown.stderr and "fake" not in unknown.stderr and "local" not in unknown.stderr
    for result in (stored, ran, tested):
        assert SECRET not in str(result)
    assert SECRET[-12:] not in Path(os.environ["WORKBENCH_TRACES"]).read_bytes().decode("latin-1")


def test_keys_test_reports_a_rejected_key(fake_server: FakeServerProcess) -> None:
    # the fake server rejects nothing by key, so point at a closed port: the failure is reported in one line
    result = workbench("keys", "test", "openai", env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
                                                      "OPENAI_API_KEY": SECRET})
    assert result.returncode == 2 and "cannot reach" in result.stderr and "Traceback" not in result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert result.stderr.startswith("workbench: openai: cannot reach") and "openai/-" not in result.stderr


def test_keys_test_names_the_provider_it_tried() -> None:
    missing = workbench("keys", "test", "openai", "--json", env={"OPENAI_API_KEY": ""})
    assert missing.returncode == 2
    assert json_lines(missing.stdout)[0]["error"] == "openai: no API key for openai"
    assert "workbench: openai: no API key for openai" in missing.stderr and "/-" not in missing.stderr


@pytest.mark.skipif(not os.environ.get("WORKBENCH_SECRET_SERVICE"),
                    reason="needs a running, unlocked Secret Service (CI starts gnome-keyring)")
def test_real_secret_service_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real backend: keyring's SecretService over D-Bus, in this process and in a `workbench` child."""
    from keyring.backends.SecretService import Keyring as SecretServiceKeyring

    monkeypatch.delenv("PYTHON_KEYRING_BACKEND")
    keyring.set_keyring(SecretServiceKeyring())
    try:
        keys.set_key("mistral", SECRET)
        assert keys.stored_key("mistral") == SECRET
        listed = subprocess.run([sys.executable, "-m", "workbench", "keys", "list", "--json"], capture_output=True,
                                text=True, env={k: v for k, v in os.environ.items() if k != "MISTRAL_API_KEY"},
                                check=True)
        mistral = next(r for r in json_lines(listed.stdout) if r["provider"] == "mistral")
        assert mistral == {"provider": "mistral", "env_var": "MISTRAL_API_KEY", "source": "keyring", "key": "…WXYZ",
                           "overrides_keyring": False}
    finally:
        keys.delete_key("mistral")
    assert keys.stored_key("mistral") is None


def test_canary_key_from_the_keyring_never_lands_anywhere(fake_server: FakeServerProcess, tmp_path: Path) -> None:
    """A stored key, a race, a failing call, a provider echoing the key (verbatim, URL-encoded, lower-cased), the key
    in eval variables, the trace log, evals.db, every report, sessions and every export: the key is nowhere but the
    keyring, in none of its encodings."""
    from tests.test_secrets_echo import key_encodings

    canary = "sk-canary-keyring-everywhere-7f3a9c1eQZXV"
    work = tmp_path / "work"
    work.mkdir()
    env = {"OPENAI_BASE_URL": f"{fake_server.base_url}/v1", "WORKBENCH_TRACES": str(work / "traces.db")}
    outputs = [workbench("keys", "set", "openai", "--stdin", stdin=canary, env=env, cwd=work)]
    outputs.append(workbench("run", "hello", "-m", "openai/gpt-4o@tokens=3", "-m",
                             "openai/gpt-4o@status=401,fail=9,id=canary-all", "-m",
                             "openai/gpt-4o@echo_key=1,id=canary-echo", "--json", env=env, cwd=work))
    outputs.append(workbench("run", "again", "-m", "openai/gpt-4o@tokens=3", "-m", "openai/gpt-4o@echo_key=1",
                             env=env, cwd=work))
    assert outputs[-1].stdout.count("[key]") >= 3  # the echo came, and the columns show it scrubbed
    for args in (["list", "--json"], ["export"], ["export", "--format", "csv"], ["stats", "--json"],
                 ["search", "hello", "--json"], ["export", "-o", str(work / "export.jsonl")]):
        outputs.append(workbench("traces", *args, env=env, cwd=work))
    outputs += [workbench("keys", "list", env=env, cwd=work), workbench("config", "show", "--json", env=env, cwd=work),
                workbench("tokens", "-m", "openai/gpt-4o", "--json", stdin="count", env=env, cwd=work)]
    outputs += _prompts_sessions_evals_and_exports(work, env, canary)
    assert all(o.returncode in (0, 1) for o in outputs), [o.stderr for o in outputs if o.returncode not in (0, 1)]
    printed = "".join(o.stdout + o.stderr for o in outputs)
    authored = {work / "evals" / "canary.yaml", tmp_path / "keyring.json"}  # the user's suite; the test keyring
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p not in authored and ".git" not in p.parts]
    written = b"".join(p.read_bytes() for p in files)
    assert len(written) > 10_000  # the store and the exports really are there
    assert {"evals.db", "traces.db", "s1.yaml", "network.log"} <= {p.name for p in files}
    assert b"[key]" in written and b"[redacted:api_key]" in written  # echoes and the variable, scrubbed
    for needle in key_encodings(canary):  # the listings show the last four characters on purpose
        assert needle not in printed, needle
    for needle in (*key_encodings(canary), "QZXV"):
        assert needle.encode() not in written, needle


def _prompts_sessions_evals_and_exports(work: Path, env: dict[str, str],
                                        canary: str) -> list[subprocess.CompletedProcess[str]]:
    """A prompt file run (the key as a variable, a target echoing it) and saved as a session, an eval with the key in
    its variables, a judge, a target echoing the key and every report, every export."""
    (work / "workbench.toml").write_text("", encoding="utf-8")
    (work / "prompts").mkdir()
    (work / "prompts" / "greet.yaml").write_text(
        "name: greet\nmessages:\n  - role: user\n    content: Say hi to {{who}}\nvariables:\n  who:\n"
        "    default: Ada\n", encoding="utf-8")
    (work / "evals").mkdir()
    (work / "evals" / "canary.yaml").write_text(
        "prompts: [greet]\ntargets: [openai/gpt-4o@tokens=4, 'openai/gpt-4o@echo_key=1,id=canary-eval']\n"
        "judge: openai/gpt-4o@tokens=4\n"
        f"tests:\n  - vars: {{who: Bob, token: {canary}}}\n    assert:\n      - type: llm-rubric\n"
        f"        value: is polite\n  - vars: {{who: {canary}}}\n", encoding="utf-8")
    repo = work / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for key, value in (("user.email", "ci@example.com"), ("user.name", "CI")):
        subprocess.run(["git", "-C", str(repo), "config", key, value], check=True)
    runs = [
        workbench("run", "--prompt", "greet", "--var", f"who={canary}", "-m", "openai/gpt-4o@tokens=3", "-m",
                  "openai/gpt-4o@echo_key=1,id=canary-session", "--save-session", "s1", env=env, cwd=work),
        workbench("eval", "evals/canary.yaml", "--report", "md", "--report", "json", "--report", "junit",
                  "--report", "html", "--out", str(work / "reports"), env=env, cwd=work),
        workbench("evals", "show", "last", "--format", "json", env=env, cwd=work),
        workbench("export", "report", "last", "--to", str(repo), "--commit", env=env, cwd=work),
        workbench("export", "prompt", "greet", "--to", str(repo), "--commit", env=env, cwd=work),
        workbench("export", "session", "s1", "--to", str(repo), "--commit", env=env, cwd=work),
        workbench("export", "code", "greet", "--target", "openai/gpt-4o", env=env, cwd=work),
        workbench("export", "code", "greet", "--target", "openai/gpt-4o", "--lang", "curl", env=env, cwd=work),
    ]
    assert (work / "sessions" / "s1.yaml").is_file() and len(list((work / "reports").iterdir())) == 4
    assert "OPENAI_API_KEY" in runs[-1].stdout  # the code reads the key from the environment
    return runs


@pytest.mark.parametrize("bad", ["\u200b", "é", "\u0007"], ids=["zero-width-space", "e-acute", "bell"])
def test_a_key_http_cannot_carry_is_refused_on_entry_and_never_printed(
    fake_server: FakeServerProcess, tmp_path: Path, bad: str
) -> None:
    canary = f"sk-canary-entry-4d2e{bad}91QK"
    env = {"OPENAI_BASE_URL": f"{fake_server.base_url}/v1", "WORKBENCH_TRACES": str(tmp_path / "traces.db")}
    stored = workbench("keys", "set", "openai", "--stdin", stdin=canary + "\n", env=env)
    assert stored.returncode == 2 and "keys set openai" in stored.stderr and "cannot carry" in stored.stderr
    assert "Traceback" not in stored.stderr and keys.stored_key("openai") is None
    ran = workbench("run", "hi", "-m", "openai/gpt-4o@tokens=2", "--json", env={**env, "OPENAI_API_KEY": canary})
    assert ran.returncode != 0
    error = json_lines(ran.stdout)[0]["error"]
    assert "OPENAI_API_KEY" in error and "cannot carry" in error
    listed = workbench("keys", "list", env={**env, "OPENAI_API_KEY": canary})
    tested = workbench("keys", "test", "openai", env={**env, "OPENAI_API_KEY": canary})
    assert tested.returncode == 2 and "OPENAI_API_KEY" in tested.stderr
    printed = "".join(o.stdout + o.stderr for o in (stored, ran, listed, tested))
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    for needle in (canary, canary[-6:], "4d2e"):
        assert needle not in printed and needle.encode() not in written


@pytest.mark.parametrize("provider", ["gemini", "anthropic"])
def test_keys_test_lists_models_from_the_fake_server_in_each_providers_shape(
        provider: str, fake_server: FakeServerProcess) -> None:
    env = {f"{provider.upper()}_BASE_URL": fake_server.base_url, f"{provider.upper()}_API_KEY": SECRET}
    tested = workbench("keys", "test", provider, "--json", env=env)
    assert tested.returncode == 0, tested.stderr
    row = json_lines(tested.stdout)[0]
    assert row["ok"] is True and row["models"] >= 5
    shown = workbench("keys", "test", provider, env=env)
    assert shown.returncode == 0 and shown.stdout.startswith(f"{provider}: key accepted, {row['models']} models")
    assert SECRET not in tested.stdout + tested.stderr + shown.stdout + shown.stderr
