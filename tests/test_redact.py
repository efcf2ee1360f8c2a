"""The redaction rules: which secrets and personal data they catch, what they leave alone, how fast they stay; the
trace log written by `workbench run` holds none of them. ``EchoServer`` (a Chat Completions server whose reply is
the prompt) serves the other redaction tests too: what a model says is what the test asked it to say."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.test_cli import workbench
from workbench.core.traces.redact import BUILTIN_RULES, METADATA_ONLY, Redactor

HOSTILE = "hostile"
"""The model name whose reply is :data:`HOSTILE_REPLY` instead of the prompt."""
HOSTILE_REPLY = ("Hello\x1b[2J\x1b[H cleared \x1b]0;owned title\x07 titled \x1b]52;c;ZWNobyBwd25lZA==\x07 clipboard "
                 "\x1b[31mred\x1b[0m \x9b1;1H c1 \x07bell\x08back\rreturn\r\nnext\tline\n\x1bPdcs\x1b\\ end")
"""A reply of escape sequences: clear the screen, set the title, set the clipboard (OSC 52), colours, an 8-bit CSI,
BEL, backspace, a lone carriage return, a DCS string; a CRLF, a tab and a newline that must stay."""
STREAM_ERROR = "stream-error"
"""The model name whose stream is an error event quoting the prompt (HTTP 200)."""


class EchoServer:
    """An OpenAI-compatible server (``POST /v1/chat/completions``, streamed): the reply is the last user message
    verbatim (models :data:`HOSTILE` and :data:`STREAM_ERROR` aside), in three chunks, with usage."""

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                owner.requests.append(body)
                model = str(body["model"])
                last = next(str(m["content"]) for m in reversed(body["messages"]) if m["role"] == "user")
                if model == STREAM_ERROR:
                    events = [{"error": {"message": last, "type": "server_error"}}]
                else:
                    text = HOSTILE_REPLY if model == HOSTILE else last
                    third = max(1, len(text) // 3)
                    parts = [text[:third], text[third:2 * third], text[2 * third:]]
                    events = [{"id": "c1", "object": "chat.completion.chunk", "model": model,
                               "choices": [{"index": 0, "delta": {"content": part}, "finish_reason": None}]}
                              for part in parts if part]
                    events.append({"id": "c1", "object": "chat.completion.chunk", "model": model,
                                   "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                                   "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}})
                payload = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.requests: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> EchoServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def env(self, key: str = "sk-test-echo-server-key-000000") -> dict[str, str]:
        """Point ``openai/*`` at this server."""
        return {"OPENAI_BASE_URL": self.base_url, "OPENAI_API_KEY": key}


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


SECRETS = {
    "openai project key": ("sk-proj-Q3vX9aLmP0tR7sYw2ZbN4cKd8Fh_-Jg6Ue1IoWq5Ty", "api_key"),
    "anthropic key": ("sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_aBcD", "api_key"),
    "gemini key": ("AIzaSyD4f9Qm2XwLb7Rc1Ve8Tn3Kp6Hj0Gs5Ua-", "api_key"),
    "github classic token": ("ghp_" + "R8tYq2Lm9Xc4Vb7Nz1Kw5Hd3Jf6Gs0Pa2Eu8", "api_key"),
    "github oauth token": ("gho_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8", "api_key"),
    "github server token": ("ghs_" + "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8", "api_key"),
    "github fine-grained token": ("github_pat_11ABCDEFG0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789abcdefGHIJ", "api_key"),
    "slack bot token": ("xoxb-2048163950-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "api_key"),
    "slack user token": ("xoxp-2048163950-1234567890123-1234567890123-0123456789abcdef", "api_key"),
    "aws access key id": ("AKIAIOSFODNN7EXAMPLE", "api_key"),
    "aws session key id": ("ASIAJEXAMPLEXEG2JICE", "api_key"),
    "jwt": ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ."
            "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", "api_key"),
    "groq key": ("gsk_Wq8Ez4Rt6Yu2Io0Pa5Sd7Fg9Hj1Kl3Zx", "api_key"),
    "stripe key": ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "api_key"),
    "hugging face token": ("hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567", "api_key"),
    "e-mail": ("jane.doe+billing@example.co.uk", "email"),
    "card, spaced": ("4111 1111 1111 1111", "card"),
    "card, dashed": ("5500-0000-0000-0004", "card"),
    "card, plain": ("378282246310005", "card"),
}


@pytest.mark.parametrize("name", SECRETS)
def test_each_builtin_rule_redacts_its_secret_whole_wherever_it_sits(name: str) -> None:
    secret, rule = SECRETS[name]
    redactor = Redactor.build()
    for text in (secret, f"use {secret} now", f'{{"token": "{secret}"}}', f"Authorization: Bearer {secret}\n",
                 f"key={secret}&x=1", f"({secret})"):
        kept = redactor.text(text)
        assert kept is not None and secret not in kept and f"[redacted:{rule}]" in kept, (text, kept)
        assert kept.replace(f"[redacted:{rule}]", secret) == text  # nothing else of the text changed


def test_prose_code_and_numbers_are_left_alone() -> None:
    redactor = Redactor.build()
    texts = ["a well-known task-manager-thing-with-a-long-name and a back-end look-up",
             "ghost_writer_function_name and snake_case_identifiers_that_are_long",
             "Call 2024-01-15 at 10:30; order 12345; pi is 3.14159; version 1.2.3",
             "AKIA is not a key, nor ASIA, nor AIza alone; eyJ alone is not a token",
             "user@localhost has no domain", "A JSON Web Token looks like xxx.yyy.zzz", ""]
    for text in texts:
        assert redactor.text(text) == text


def test_keys_are_redacted_before_card_numbers_and_the_config_order_does_not_matter() -> None:
    key = "sk-proj-1111-2222-3333-4444-AbCdEfGhIj"
    for names in (("card", "email", "api_key"), ("api_key", "card", "email")):
        assert Redactor.build(names).text(f"key {key}") == "key [redacted:api_key]"


def test_the_rules_stay_linear_on_long_hostile_text() -> None:
    """Runs of address characters, digits, key prefixes and markers that almost match: each text in well under a
    second (a rule that rescans every run from every position takes minutes on the first one)."""
    redactor = Redactor.build(custom={"order": r"ORD-\d{6}"})
    texts = ["a" * 200_000 + " x@y", "sk-" + "a1" * 100_000, "1 " * 100_000, "eyJabc." * 30_000,
             "xoxb-" * 40_000, "ghp_" * 50_000, "A" * 200_000, "@" * 200_000, "k-_" * 70_000]
    for text in texts:
        started = time.perf_counter()
        redactor.text(text)
        assert time.perf_counter() - started < 1.0, text[:20]


def test_builtin_rules_are_valid_regexes_and_metadata_only_keeps_no_text() -> None:
    import re

    for pattern in BUILTIN_RULES.values():
        re.compile(pattern)
    bare = Redactor.build(metadata_only=True)
    assert bare.text("jane@example.com") is None
    assert bare.stored("anything") == METADATA_ONLY and bare.stored("") == ""
    assert bare.mapping({"who": "Jane", "none": ""}) == {"who": METADATA_ONLY, "none": ""}


def test_the_trace_log_written_by_workbench_run_holds_no_token_of_any_kind(tmp_path: Path,
                                                                       echo_server: EchoServer) -> None:
    """The prompt carries every secret; the echo server says them back: neither the prompt, the reply nor the
    full-text index in the trace log (nor its export) holds one."""
    secrets = [secret for secret, _ in SECRETS.values()]
    prompt = "Remember these: " + " ; ".join(secrets)
    db = tmp_path / "traces.db"
    env = {**echo_server.env(), "WORKBENCH_TRACES": str(db)}
    ran = workbench("run", prompt, "-m", "openai/echo", "--json", env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert echo_server.requests and prompt in echo_server.requests[0]["messages"][-1]["content"]
    exported = workbench("traces", "export", env=env, cwd=tmp_path)
    searched = workbench("traces", "search", "redacted", "--json", env=env, cwd=tmp_path)
    assert exported.returncode == 0 and searched.returncode == 0 and searched.stdout.strip()
    with sqlite3.connect(db) as conn:  # every page written, the full-text index's included
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("traces.db*"))
    stored = exported.stdout + searched.stdout
    assert "[redacted:api_key]" in stored and "[redacted:email]" in stored and "[redacted:card]" in stored
    for secret in secrets:
        assert secret not in stored and secret.encode() not in written, secret
