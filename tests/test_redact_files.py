"""The settings' redaction rules hold for every file workbench writes, not only the trace log: the eval store
(variables, prompts, replies, graders' reasons), the reports rendered from it and their export, saved sessions and
their export; and metadata-only mode keeps no text in any of them."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

from tests.test_cli import json_lines, workbench
from tests.test_redact import EchoServer
from workbench.core.traces.redact import METADATA_ONLY

EMAIL, CARD, KEY = "jane.doe@example.com", "4111 1111 1111 1111", "sk-proj-Q3vX9aLmP0tR7sYw2ZbN4cKd8Fh_-Jg6Ue1IoWq5Ty"
SECRETS = (EMAIL, CARD, KEY)
PROMPT = "name: ask\nmessages:\n  - role: user\n    content: 'Write to {{email}}, card {{card}}, key {{key}}'\n"
SUITE = f"""prompts: [ask]
targets: [openai/echo]
tests:
  - description: personal data
    vars: {{email: {EMAIL}, card: {CARD}, key: {KEY}}}
    assert:
      - type: contains
        value: {EMAIL}
      - type: equals
        value: something else
  - description: harmless
    vars: {{email: nobody, card: none, key: none}}
    assert:
      - type: contains
        value: nobody
"""


def workspace(root: Path, config: str = "") -> Path:
    root.mkdir()
    (root / "workbench.toml").write_text(config, encoding="utf-8")
    (root / "prompts").mkdir()
    (root / "prompts" / "ask.yaml").write_text(PROMPT, encoding="utf-8")
    (root / "evals").mkdir()
    (root / "evals" / "s.yaml").write_text(SUITE, encoding="utf-8")
    return root


def git_repo(path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    for key, value in (("user.email", "ci@example.com"), ("user.name", "CI")):
        subprocess.run(["git", "-C", str(path), "config", key, value], check=True)
    return path


def written_bytes(*roots: Path) -> bytes:
    """Every file under ``roots`` (SQLite stores checkpointed first, so every page is in the main file too)."""
    for root in roots:
        for db in root.rglob("*.db"):
            with sqlite3.connect(db) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return b"".join(p.read_bytes() for root in roots for p in root.rglob("*") if p.is_file() and ".git" not in p.parts)


def test_eval_store_reports_and_their_export_hold_no_email_card_or_key(tmp_path: Path) -> None:
    work = workspace(tmp_path / "work")
    repo = git_repo(tmp_path / "repo")
    with EchoServer() as server:  # the reply is the prompt: the secrets come back in every output
        env = {**server.env(), "WORKBENCH_TRACES": str(work / "data" / "traces.db")}
        ran = workbench("eval", "evals/s.yaml", "--report", "md", "--report", "json", "--report", "junit",
                        "--report", "html", "--out", str(work / "reports"), env=env, cwd=work)
        shown = workbench("evals", "show", "last", "--format", "json", env=env, cwd=work)
        exported = workbench("export", "report", "last", "--to", str(repo), "--format", "md", "--format", "json",
                             "--format", "junit", "--format", "html", "--commit", env=env, cwd=work)
        again = workbench("eval", "evals/s.yaml", "--dry-run", "--json", env=env, cwd=work)
    assert ran.returncode == 1, ran.stderr  # the `equals` assertion fails, on purpose: its reason quotes the reply
    assert shown.returncode == 0 and exported.returncode == 0, shown.stderr + exported.stderr
    report = json.loads((next((work / "reports").glob("*.json"))).read_text(encoding="utf-8"))
    personal = report["cells"][0]["results"][0]
    assert [g["passed"] for g in personal["gradings"]] == [True, False]  # graded on the reply as it came
    assert personal["observation"]["vars"]["email"] == "[redacted:email]"
    assert "[redacted:email]" in personal["gradings"][1]["reason"]
    # a reply the rules change is not cached (a cached reply is graded as the reply itself); a harmless one is
    assert json_lines(again.stdout)[0]["preflight"]["cached"] == 1
    files = written_bytes(work / "data", work / "reports", repo)  # what workbench wrote (the suite is the user's)
    assert len(list((work / "reports").iterdir())) == 4 and len(list((repo / "evals" / "reports").iterdir())) == 4
    assert b"[redacted:email]" in files and b"[redacted:card]" in files and b"[redacted:api_key]" in files
    for secret in SECRETS:
        assert secret.encode() not in files, secret
        assert secret not in shown.stdout, secret
    committed = subprocess.run(["git", "-C", str(repo), "show", "HEAD"], capture_output=True, text=True).stdout
    assert "[redacted:email]" in committed and not any(secret in committed for secret in SECRETS)


def test_saved_sessions_and_session_exports_hold_no_email_card_or_key(tmp_path: Path) -> None:
    work = workspace(tmp_path / "work")
    repo = git_repo(tmp_path / "repo")
    clean = "name: clean\ntargets:\n- openai/echo\nrequest:\n  messages:\n  - role: user\n    content: hello\n"
    (work / "sessions").mkdir()
    (work / "sessions" / "clean.yaml").write_text(clean, encoding="utf-8")
    (work / "sessions" / "old.yaml").write_text(  # as a session saved before the rules (or by hand) holds it
        f"name: old\nvariables:\n  email: {EMAIL}\ntargets:\n- openai/echo\nrequest:\n  messages:\n  - role: user\n"
        f"    content: 'mail {EMAIL} with card {CARD}'\nresults:\n- target: openai/echo\n  status: ok\n"
        f"  text: 'key {KEY}'\n", encoding="utf-8")
    with EchoServer() as server:
        env = server.env()
        ran = workbench("run", "--prompt", "ask", "--var", f"email={EMAIL}", "--var", f"card={CARD}", "--var",
                        f"key={KEY}", "-m", "openai/echo", "--save-session", "s1", env=env, cwd=work)
        exports = [workbench("export", "session", name, "--to", str(repo), "--commit", env=env, cwd=work)
                   for name in ("s1", "old", "clean")]
    assert ran.returncode == 0 and all(e.returncode == 0 for e in exports), [e.stderr for e in (ran, *exports)]
    saved = (work / "sessions" / "s1.yaml").read_text(encoding="utf-8")
    assert "email: '[redacted:email]'" in saved and "[redacted:api_key]" in saved and "[redacted:card]" in saved
    assert (repo / "sessions" / "clean.yaml").read_text(encoding="utf-8") == clean  # exact bytes when nothing to hide
    files = b"".join(p.read_bytes() for p in (repo / "sessions").iterdir()) + saved.encode()
    assert b"[redacted:email]" in (repo / "sessions" / "old.yaml").read_bytes()
    for secret in SECRETS:
        assert secret.encode() not in files, secret


def test_metadata_only_keeps_no_text_in_the_eval_store_its_reports_or_a_session(tmp_path: Path) -> None:
    work = workspace(tmp_path / "work", "[traces]\nmetadata_only = true\n")
    with EchoServer() as server:
        env = {**server.env(), "WORKBENCH_TRACES": str(work / "data" / "traces.db")}
        ran = workbench("eval", "evals/s.yaml", "--report", "json", "--report", "html", "--out",
                        str(work / "reports"), env=env, cwd=work)
        again = workbench("eval", "evals/s.yaml", "--dry-run", "--json", env=env, cwd=work)
        session = workbench("run", "--prompt", "ask", "--var", "email=x", "--var", "card=y", "--var", "key=z",
                            "-m", "openai/echo", "--save-session", "s1", env=env, cwd=work)
    assert ran.returncode == 1 and session.returncode == 0, ran.stderr + session.stderr
    report = json.loads((next((work / "reports").glob("*.json"))).read_text(encoding="utf-8"))
    observation = report["cells"][1]["results"][0]["observation"]
    assert observation["text"] == METADATA_ONLY and observation["prompt_text"] == METADATA_ONLY
    assert observation["vars"] == {"email": METADATA_ONLY, "card": METADATA_ONLY, "key": METADATA_ONLY}
    assert report["cells"][1]["results"][0]["passed"] is True and observation["output_tokens"] == 7  # figures kept
    assert json_lines(again.stdout)[0]["preflight"]["cached"] == 0  # nothing cached: no reply is kept
    saved = (work / "sessions" / "s1.yaml").read_text(encoding="utf-8")
    assert f"content: '{METADATA_ONLY}'" in saved and "Write to" not in saved
    files = written_bytes(work / "data", work / "reports", work / "sessions")
    for text in ("nobody", "Write to", "card none", "card y"):  # the prompt, the variables, the replies
        assert text.encode() not in files, text
