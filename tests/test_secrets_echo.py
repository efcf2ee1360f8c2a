"""A provider that echoes the API key in an error (verbatim, URL-encoded, in another letter case, base64) never gets
it into an error: the echoes are scrubbed where the error is made from the response, with the endpoint's key."""

from __future__ import annotations

import base64
import urllib.parse

import httpx2
import pytest

from tests.test_redact import STREAM_ERROR, EchoServer
from workbench.core.call_record import CallRecord
from workbench.core.errors import KEY_ECHO, ProviderHTTPError, ProviderStreamError, scrub_key
from workbench.core.request import ChatRequest
from workbench.core.resilience.caller import Caller
from workbench.fakeserver.process import FakeServerProcess

CANARY = "sk-canary-echo-5e1d0c9b7a3f2468QZXE"


def url_encoded(key: str) -> str:
    """Every character but letters and digits as ``%XX`` (what the fake server's ``echo_key`` sends)."""
    return "".join(c if c.isalnum() else f"%{ord(c):02X}" for c in key)


def key_encodings(key: str) -> list[str]:
    """The key as a server or a log could spell it: verbatim, lower and upper case, URL-encoded (all but letters and
    digits, either hex case; and as ``urllib.parse.quote`` leaves it), base64 and URL-safe base64 of the key, of
    ``Bearer <key>``, of ``user:<key>`` and ``<key>:``; and the key's tail in both cases."""
    forms = [key, key.lower(), key.upper(), url_encoded(key), url_encoded(key).lower(),
             urllib.parse.quote(key, safe=""), urllib.parse.quote_plus(key)]
    for raw in (key, f"Bearer {key}", f"user:{key}", f"{key}:"):
        forms += [base64.b64encode(raw.encode()).decode().rstrip("="),
                  base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")]
    forms += [key[-8:], key[-8:].lower()]
    return list(dict.fromkeys(forms))


def leaked(text: str, key: str) -> list[str]:
    return [form for form in key_encodings(key) if form in text]


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
async def test_a_401_echoing_the_key_three_ways_leaves_no_trace_of_it_in_the_error(
        provider: str, fake_server: FakeServerProcess, client: httpx2.AsyncClient) -> None:
    base = fake_server.base_url + ("/v1" if provider == "openai" else "")
    env = {f"{provider.upper()}_API_KEY": CANARY, f"{provider.upper()}_BASE_URL": base,
           "GOOGLE_GEMINI_BASE_URL": base}
    record = CallRecord(f"{provider}/m@echo_key=1,id=echo-{provider}", ChatRequest.from_prompt("hi"))
    await Caller(client).call(record, env=env)
    error = record.error
    assert isinstance(error, ProviderHTTPError) and error.status == 401
    assert str(error).count(KEY_ECHO) == 3  # the echo came, three times, and each one was scrubbed
    everything = f"{error} {error.hint} {error.kind} {error.detail} {error.args} {error.__dict__} {record.attempts}"
    assert leaked(everything, CANARY) == []


async def test_an_error_inside_a_stream_echoing_the_key_is_scrubbed(client: httpx2.AsyncClient) -> None:
    with EchoServer() as server:  # its stream is one error event quoting the prompt: here, the key
        prompt = f"bad key {CANARY} / {url_encoded(CANARY)} / {CANARY.lower()} / " \
                 f"{base64.b64encode(f'Bearer {CANARY}'.encode()).decode()}"
        record = CallRecord(f"openai/{STREAM_ERROR}", ChatRequest.from_prompt(prompt))
        await Caller(client).call(record, env=server.env(CANARY))
    assert isinstance(record.error, ProviderStreamError)
    assert str(record.error).count(KEY_ECHO) == 4
    assert leaked(f"{record.error} {record.finish_raw} {record.attempts}", CANARY) == []


def test_every_common_encoding_of_the_key_is_scrubbed_and_other_text_kept() -> None:
    for form in key_encodings(CANARY)[:-2]:  # the tail alone is not an echo of the key
        for text in (f"Invalid key: {form}.", f'{{"key":"{form}"}}', f"Authorization: Basic {form}=="):
            scrubbed = scrub_key(text, CANARY)
            assert KEY_ECHO in scrubbed and leaked(scrubbed, CANARY) == [], (form, scrubbed)
    assert scrub_key("Invalid key: x. Max tokens exceeded.", "x") == "Invalid key: x. Max tokens exceeded."
    assert scrub_key("The model is overloaded, retry.", CANARY) == "The model is overloaded, retry."
    assert scrub_key("short local-key here", "local-key") == f"short {KEY_ECHO} here"
