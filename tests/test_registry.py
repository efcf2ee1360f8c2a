"""Model references, provider resolution from the ecosystem's environment variables, explicit max_tokens."""

from __future__ import annotations

import httpx2
import pytest

from workbench.core.errors import ConfigError
from workbench.core.registry import FALLBACK_MAX_TOKENS, make_provider, resolve
from workbench.core.request import ChatRequest, ModelRef, Params


def endpoint(target: str, **env: str):  # type: ignore[no-untyped-def]
    return resolve(ModelRef.parse(target), env)


def test_model_reference_keeps_everything_after_the_first_slash() -> None:
    ref = ModelRef.parse("OpenRouter/anthropic/claude-sonnet-4-5")
    assert (ref.provider, ref.model, str(ref)) == ("openrouter", "anthropic/claude-sonnet-4-5",
                                                   "openrouter/anthropic/claude-sonnet-4-5")
    for bad in ("gpt-4o", "/x", "openai/"):
        with pytest.raises(ConfigError, match="not a model reference"):
            ModelRef.parse(bad)


def test_keys_and_base_urls_come_from_the_conventional_variables() -> None:
    e = endpoint("openai/gpt-4.1-mini", OPENAI_API_KEY="k1")
    assert (e.base_url, e.wire, e.api_key) == ("https://api.openai.com/v1", "openai_chat", "k1")
    e = endpoint("anthropic/claude-sonnet-4-5", ANTHROPIC_API_KEY="k2", ANTHROPIC_BASE_URL="http://gw:9/")
    assert (e.base_url, e.api_key) == ("http://gw:9", "k2")
    assert endpoint("gemini/gemini-2.5-flash", GOOGLE_API_KEY="k3").api_key == "k3"
    assert endpoint("gemini/gemini-2.5-flash", GEMINI_API_KEY="k4", GOOGLE_API_KEY="k3").api_key == "k4"
    assert endpoint("gemini/x", GOOGLE_GEMINI_BASE_URL="http://g:1").base_url == "http://g:1"
    assert endpoint("openai-responses/o3", OPENAI_API_KEY="k").wire == "openai_responses"


def test_ollama_host_without_scheme_and_local_servers_need_no_key() -> None:
    assert endpoint("ollama/llama3.2").base_url == "http://127.0.0.1:11434"
    assert endpoint("ollama/llama3.2", OLLAMA_HOST="gpu-box:11434").base_url == "http://gpu-box:11434"
    # OLLAMA_HOST as Ollama's own clients read it: the server's OLLAMA_HOST=0.0.0.0 in the same shell works
    for value, url in [("0.0.0.0", "http://0.0.0.0:11434"), ("gpu-box", "http://gpu-box:11434"),
                       (":8080", "http://127.0.0.1:8080"), ("[::1]", "http://[::1]:11434"),
                       ("[::1]:9", "http://[::1]:9"), (" gpu-box:1/ollama/ ", "http://gpu-box:1/ollama"),
                       ("http://gpu-box", "http://gpu-box"), ("https://gpu-box:8443/", "https://gpu-box:8443")]:
        assert endpoint("ollama/llama3.2", OLLAMA_HOST=value).base_url == url, value
    with pytest.raises(ConfigError, match="OLLAMA_HOST"):
        endpoint("ollama/llama3.2", OLLAMA_HOST="gpu-box:port")
    assert endpoint("vllm/qwen").base_url == "http://127.0.0.1:8000/v1"
    assert endpoint("llamacpp/any").api_key is None


def test_missing_key_names_the_variable_and_a_base_url_makes_it_optional() -> None:
    with pytest.raises(ConfigError) as err:
        endpoint("groq/llama-3.3-70b")
    assert "GROQ_API_KEY" in (err.value.hint or "")
    assert endpoint("openai/local", OPENAI_BASE_URL="http://127.0.0.1:8000/v1").api_key is None


def test_fake_providers_need_a_server_url() -> None:
    with pytest.raises(ConfigError, match="fake provider needs a server"):
        endpoint("fake/x")
    assert endpoint("fake/x", WORKBENCH_FAKE_URL="http://127.0.0.1:5").base_url == "http://127.0.0.1:5/v1"
    assert endpoint("fake-anthropic/x", WORKBENCH_FAKE_URL="http://127.0.0.1:5").base_url == "http://127.0.0.1:5"


def test_the_key_never_shows_in_a_repr() -> None:
    e = endpoint("openai/gpt-4o", OPENAI_API_KEY="sk-secret-canary")
    assert "sk-secret-canary" not in repr(e) and "sk-secret-canary" not in str(e)


def test_keys_and_base_urls_from_the_environment_lose_stray_whitespace() -> None:
    env = {"OPENAI_API_KEY": " sk-pasted-with-a-newline\n", "OPENAI_BASE_URL": "http://127.0.0.1:8000/v1 \n"}
    endpoint = resolve(ModelRef.parse("openai/gpt-4.1-mini"), env)
    assert endpoint.api_key == "sk-pasted-with-a-newline"
    assert endpoint.base_url == "http://127.0.0.1:8000/v1"
    with pytest.raises(ConfigError):  # a key of whitespace only is no key
        resolve(ModelRef.parse("anthropic/claude-sonnet-4-5"), {"ANTHROPIC_API_KEY": "  \n"})


@pytest.mark.parametrize(("target", "path", "expected"), [
    ("openai/gpt-4.1-mini", ("max_completion_tokens",), 8192),
    ("openrouter/meta/llama", ("max_tokens",), FALLBACK_MAX_TOKENS),
    ("openai-responses/o3", ("max_output_tokens",), 16384),
    ("anthropic/claude-sonnet-4-5", ("max_tokens",), 4096),
    ("gemini/gemini-2.5-flash", ("generationConfig", "maxOutputTokens"), 8192),
    ("ollama/llama3.2", ("options", "num_predict"), FALLBACK_MAX_TOKENS),
    ("ollama/qwen3:0.6b", ("options", "num_predict"), 16384),  # room for its thinking and the answer after it
    ("ollama/hf.co/unsloth/DeepSeek-R1-0528-Qwen3-8B-GGUF:Q4_K_M", ("options", "num_predict"), 16384),
    ("vllm/openai/gpt-oss-20b", ("max_tokens",), 16384),
])
def test_max_tokens_is_always_explicit(target: str, path: tuple[str, ...], expected: int) -> None:
    env = {"OPENAI_API_KEY": "k", "OPENROUTER_API_KEY": "k", "ANTHROPIC_API_KEY": "k", "GEMINI_API_KEY": "k"}
    provider = make_provider(resolve(ModelRef.parse(target), env), httpx2.AsyncClient())
    body = provider.body(provider.resolve(ChatRequest.from_prompt("hi")))
    value = body
    for key in path:
        value = value[key]
    assert value == expected
    explicit = provider.body(provider.resolve(ChatRequest.from_prompt("hi", params=Params(max_tokens=77))))
    value = explicit
    for key in path:
        value = value[key]
    assert value == 77


def test_json_schema_is_sent_in_each_providers_own_field() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    request = ChatRequest.from_prompt("hi", params=Params(json_schema=schema, max_tokens=10))
    env = {"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k", "GEMINI_API_KEY": "k"}
    bodies = {t: make_provider(resolve(ModelRef.parse(t), env), httpx2.AsyncClient()).body(request)
              for t in ("openai/gpt-4o", "openai-responses/gpt-4o", "anthropic/claude", "gemini/g", "ollama/l")}
    assert bodies["openai/gpt-4o"]["response_format"]["json_schema"]["schema"] == schema
    assert bodies["openai-responses/gpt-4o"]["text"]["format"]["schema"] == schema
    assert bodies["anthropic/claude"]["output_config"]["format"]["schema"] == schema
    assert bodies["gemini/g"]["generationConfig"]["responseJsonSchema"] == schema
    assert bodies["ollama/l"]["format"] == schema


def test_sampling_params_use_each_providers_names_and_unsupported_ones_are_not_sent() -> None:
    params = Params(temperature=1.5, top_p=0.9, stop=("END",), seed=7, max_tokens=10)
    request = ChatRequest.from_prompt("hi", params=params)
    env = {"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k", "GEMINI_API_KEY": "k"}

    def body(target: str) -> dict:  # type: ignore[type-arg]
        return make_provider(resolve(ModelRef.parse(target), env), httpx2.AsyncClient()).body(request)

    chat = body("openai/gpt-4o")
    assert (chat["temperature"], chat["top_p"], chat["stop"], chat["seed"]) == (1.5, 0.9, ["END"], 7)
    responses = body("openai-responses/gpt-4o")
    assert "stop" not in responses and "seed" not in responses and responses["top_p"] == 0.9
    claude = body("anthropic/claude")
    assert claude["temperature"] == 1.0 and claude["stop_sequences"] == ["END"] and "seed" not in claude
    gemini = body("gemini/g")["generationConfig"]
    assert (gemini["topP"], gemini["stopSequences"], gemini["seed"]) == (0.9, ["END"], 7)
    ollama = body("ollama/l")["options"]
    assert (ollama["num_predict"], ollama["stop"], ollama["seed"]) == (10, ["END"], 7)
