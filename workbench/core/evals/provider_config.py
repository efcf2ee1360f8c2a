"""A promptfoo provider's ``config`` as ours: sampling parameters, and the target's own endpoint (base URL, key,
headers, body fields) as :class:`~workbench.core.endpoint_overrides.EndpointOverrides`.

Every key is honoured for every wire it applies to, or the suite fails to load at its ``file:line`` saying why:
a key that changes what is sent is never dropped. Only keys that change nothing sent (promptfoo's price
overrides) are ignored, with a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from workbench.core.endpoint_overrides import EndpointOverrides
from workbench.core.errors import ConfigError
from workbench.core.evals.model import SuiteTarget
from workbench.core.evals.provider_tools import check_tool_choice, config_tool_choice, config_tools
from workbench.core.evals.suite_promptfoo import Context, Src, expect
from workbench.core.prompts.model import PromptParams
from workbench.core.providers.reasoning import GEMINI_LEVELS, anthropic_thinking, gemini_levelled
from workbench.core.registry import PROVIDERS, base_url_problem
from workbench.core.request import ModelRef, Params
from workbench.core.validate import validated
from workbench.core.yaml_lines import Loc

_SAMPLING = {
    "temperature": "temperature", "max_tokens": "max_tokens", "max_completion_tokens": "max_tokens",
    "maxOutputTokens": "max_tokens", "max_output_tokens": "max_tokens", "num_predict": "max_tokens",
    "top_p": "top_p", "topP": "top_p", "stop": "stop", "stop_sequences": "stop", "stopSequences": "stop",
    "seed": "seed",
}
"""Config keys (OpenAI, Anthropic, Gemini, Ollama spellings) → our parameter names."""

_UNSENT = {"stop": ("openai_responses",), "seed": ("anthropic", "openai_responses")}
"""Parameters a wire has no field for: asked of it, the suite fails to load."""

_PRICE_KEYS = frozenset({"cost", "inputCost", "outputCost"})
"""promptfoo's price overrides: nothing sent changes (costs here come from the price data)."""

_BODY_FIELDS = {
    "openai_chat": frozenset({"frequency_penalty", "presence_penalty", "logit_bias", "user", "service_tier",
                              "response_format"}),
    "openai_responses": frozenset({"user", "service_tier"}),
    "anthropic": frozenset({"top_k"}),
    "gemini": frozenset({"safetySettings"}),
    "ollama": frozenset(),
}
"""Config keys sent as they are, as top-level fields of the request body."""

_GEMINI_GENERATION = frozenset({"topK", "responseMimeType", "responseSchema", "candidateCount", "presencePenalty",
                                "frequencyPenalty"})
_OLLAMA_OPTIONS = frozenset({"top_k", "min_p", "num_ctx", "repeat_penalty", "repeat_last_n", "mirostat",
                             "mirostat_eta", "mirostat_tau", "tfs_z", "typical_p", "num_keep", "presence_penalty",
                             "frequency_penalty"})
_OPENAI_WIRES = ("openai_chat", "openai_responses")


class _Parsed:
    """What one config gives, filled key by key."""

    def __init__(self, ctx: Context, src: Src, wire: str, shown: str) -> None:
        self.ctx, self.src, self.wire, self.shown = ctx, src, wire, shown
        self.params: dict[str, Any] = {}
        self.where: dict[str, Loc] = {}
        self.endpoint: dict[str, Any] = {}
        self.headers: dict[str, str] = {}
        self.body: dict[str, Any] = {}

    def refuse(self, loc: Loc, key: str, why: str) -> None:
        raise self.src.error(loc, f"config.{key} cannot be honoured for {self.shown}: {why}",
                             "remove it, or run this provider with promptfoo")

    def nested_body(self, name: str, key: str, value: Any) -> None:
        self.body.setdefault(name, {})[key] = value


def _text(parsed: _Parsed, loc: Loc, key: str, value: Any) -> str:
    text = expect(parsed.src, loc, value, str, "a text")
    if "{{" in text:
        parsed.refuse(loc, key, "templates in a provider's config are not rendered here "
                      "(for a key from the environment use apiKeyEnvar)")
    return str(text)


def _base_url(parsed: _Parsed, loc: Loc, key: str, value: Any) -> None:
    url = _text(parsed, loc, key, value).rstrip("/")
    if key == "apiHost" and parsed.wire not in (*_OPENAI_WIRES, "gemini"):
        parsed.refuse(loc, key, "apiHost is OpenAI's and Google's: use apiBaseUrl")
    if key == "apiHost":
        url = f"https://{url}" if parsed.wire == "gemini" else f"https://{url}/v1"
    if problem := base_url_problem(url):
        raise parsed.src.error(loc, f"config.{key}: {url!r} is not a usable base URL: {problem}")
    if key == "apiHost" or "base_url" not in parsed.endpoint:  # promptfoo: apiHost wins over apiBaseUrl
        parsed.endpoint["base_url"] = url


def _headers(parsed: _Parsed, loc: Loc, key: str, value: Any) -> None:
    for name, item in expect(parsed.src, loc, value, dict, "a mapping of header names to values").items():
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise parsed.src.error((*loc, name), f"header {name}: expected a text, not {type(item).__name__}")
        parsed.headers[str(name)] = _text(parsed, (*loc, name), f"headers.{name}", str(item))


def _organization(parsed: _Parsed, loc: Loc, key: str, value: Any) -> None:
    if parsed.wire not in _OPENAI_WIRES:
        parsed.refuse(loc, key, "only OpenAI's APIs take an organization")
    parsed.headers.setdefault("OpenAI-Organization", _text(parsed, loc, key, value))


def _response_format(parsed: _Parsed, loc: Loc, key: str, value: Any) -> None:
    """OpenAI's ``response_format``: as it is on Chat Completions; as ``text.format`` on the Responses API."""
    fmt = expect(parsed.src, loc, value, dict, "a mapping such as {type: json_object}")
    if parsed.wire == "openai_chat":
        parsed.body["response_format"] = fmt
    elif parsed.wire == "openai_responses":
        schema = fmt.get("json_schema") if isinstance(fmt.get("json_schema"), dict) else {}
        parsed.body["text"] = {"format": {"type": fmt.get("type"), **schema}}
    else:
        parsed.refuse(loc, key, "only OpenAI's APIs take response_format (ask for JSON in the prompt, or use "
                      "this provider's own field)")


def _one_choice(parsed: _Parsed, loc: Loc, key: str, value: Any) -> None:
    """``n`` / ``candidateCount``: one choice is all a call reads, so only 1 is honoured (more would be billed for
    choices that are dropped)."""
    if isinstance(value, bool) or value != 1:
        parsed.refuse(loc, key, f"a call reads one choice, not {value!r} (several would be billed and dropped): "
                      "for several samples use evaluateOptions.repeat or --repeat")


def _n(parsed: _Parsed, loc: Loc, key: str, value: Any) -> None:
    if parsed.wire != "openai_chat":
        parsed.refuse(loc, key, "only Chat Completions takes n")
    _one_choice(parsed, loc, key, value)
    parsed.body["n"] = value


def _passthrough(parsed: _Parsed, loc: Loc, key: str, value: Any) -> None:
    if parsed.wire not in _OPENAI_WIRES:
        parsed.refuse(loc, key, "passthrough is OpenAI's")
    fields = expect(parsed.src, loc, value, dict, "a mapping of body fields")
    if "n" in fields:
        _one_choice(parsed, (*loc, "n"), f"{key}.n", fields["n"])
    parsed.body.update(fields)


def _reasoning_effort(parsed: _Parsed, loc: Loc, key: str, value: Any) -> None:
    """The request's effort, sent in each wire's field (:mod:`workbench.core.providers.reasoning`)."""
    parsed.params["reasoning_effort"] = value
    parsed.where["reasoning_effort"] = loc


def _thinking(parsed: _Parsed, loc: Loc, key: str, value: Any) -> None:
    """Anthropic's ``thinking: {type: enabled, budget_tokens: N}`` (or ``{type: disabled}``: a budget of 0), the
    request's thinking budget on every wire."""
    setting = expect(parsed.src, loc, value, dict, "a mapping such as {type: enabled, budget_tokens: 2048}")
    kind = setting.get("type")
    if kind == "disabled" and set(setting) == {"type"}:
        parsed.params["thinking_budget"] = 0
    elif kind == "enabled" and set(setting) == {"type", "budget_tokens"}:
        parsed.params["thinking_budget"] = setting["budget_tokens"]
    else:
        raise parsed.src.error(loc, f"config.{key}: expected {{type: enabled, budget_tokens: N}} or {{type: disabled}}")
    parsed.where["thinking_budget"] = (*loc, "budget_tokens") if kind == "enabled" else loc


def _tools(parsed: _Parsed, loc: Loc, key: str, value: Any) -> None:
    """The request's tools, sent with every cell (:mod:`workbench.core.evals.provider_tools`)."""
    parsed.params["tools"] = config_tools(parsed.ctx, parsed.src, loc, value)
    parsed.where["tools"] = loc


def _tool_choice(parsed: _Parsed, loc: Loc, key: str, value: Any) -> None:
    parsed.params["tool_choice"] = config_tool_choice(parsed.src, loc, value)
    parsed.where["tool_choice"] = loc


def _tool_params(parsed: _Parsed) -> dict[str, Any]:
    """The tools and tool choice the config set (taken out of ``parsed.params``), the choice checked against them."""
    tools = parsed.params.pop("tools", ())
    choice = parsed.params.pop("tool_choice", None)
    if choice is not None:
        check_tool_choice(parsed.src, parsed.where["tool_choice"], choice, tools)
    return {**({"tools": tools} if tools else {}), **({"tool_choice": choice} if choice is not None else {})}


def _generation_config(parsed: _Parsed, loc: Loc, key: str, value: Any) -> None:
    if parsed.wire != "gemini":
        parsed.refuse(loc, key, "generationConfig is Gemini's")
    for inner, item in expect(parsed.src, loc, value, dict, "a mapping").items():
        inner_loc = (*loc, inner)
        if inner in _SAMPLING:
            _sampling(parsed, inner_loc, str(inner), item)
        elif inner == "thinkingConfig":
            _thinking_config(parsed, inner_loc, item)
        elif inner in _GEMINI_GENERATION:
            if inner == "candidateCount":
                _one_choice(parsed, inner_loc, f"generationConfig.{inner}", item)
            parsed.nested_body("generationConfig", str(inner), item)
        else:
            parsed.refuse(inner_loc, f"generationConfig.{inner}", "this generation setting is not supported")


def _thinking_config(parsed: _Parsed, loc: Loc, value: Any) -> None:
    """Gemini's ``generationConfig.thinkingConfig``: its ``thinkingBudget`` is the request's thinking budget (the
    thoughts are always included when there is one)."""
    setting = expect(parsed.src, loc, value, dict, "a mapping such as {thinkingBudget: 1024}")
    for inner in setting:
        if inner not in ("thinkingBudget", "includeThoughts", "thinkingLevel"):
            parsed.refuse((*loc, inner), f"generationConfig.thinkingConfig.{inner}",
                          "set thinkingBudget or thinkingLevel only")
    if "thinkingLevel" in setting:
        _thinking_level(parsed, (*loc, "thinkingLevel"), setting)
    if "thinkingBudget" in setting:
        parsed.params["thinking_budget"] = setting["thinkingBudget"]
        parsed.where["thinking_budget"] = (*loc, "thinkingBudget")
    if setting.get("includeThoughts") is False and setting.get("thinkingBudget") != 0:
        parsed.refuse((*loc, "includeThoughts"), "generationConfig.thinkingConfig.includeThoughts",
                      "thoughts are always included (set thinkingBudget: 0 for no thinking)")


def _thinking_level(parsed: _Parsed, loc: Loc, setting: dict[str, Any]) -> None:
    """Gemini 3's ``thinkingLevel``: the request's reasoning effort (sent back as ``thinkingLevel``), on a Gemini 3
    model and without a budget (Gemini refuses both), else the load fails at its line."""
    level, key = setting["thinkingLevel"], "generationConfig.thinkingConfig.thinkingLevel"
    if not isinstance(level, str) or level.lower() not in GEMINI_LEVELS or level.lower() == "none":
        parsed.refuse(loc, key, f"{level!r} is not minimal, low, medium or high")
    if "thinkingBudget" in setting:
        parsed.refuse(loc, key, "Gemini takes a thinkingLevel or a thinkingBudget, not both")
    if not gemini_levelled(parsed.shown):
        parsed.refuse(loc, key, "thinkingLevel is for Gemini 3 and later models (gemini-3…): set thinkingBudget")
    parsed.params["reasoning_effort"] = level.lower()
    parsed.where["reasoning_effort"] = loc


def _sampling(parsed: _Parsed, loc: Loc, key: str, value: Any) -> None:
    name = _SAMPLING[key]
    if parsed.wire in _UNSENT.get(name, ()):
        parsed.refuse(loc, key, f"the {parsed.wire.replace('_', ' ')} API has no {name} field")
    if name == "temperature" and parsed.wire == "anthropic" and isinstance(value, (int, float)) and value > 1:
        parsed.refuse(loc, key, f"Anthropic's temperature is 0 to 1, not {value}")
    parsed.params[name] = [value] if name == "stop" and isinstance(value, str) else value
    parsed.where[name] = loc


def _api_key(parsed: _Parsed, loc: Loc, key: str, value: Any) -> None:
    parsed.endpoint["api_key"] = _text(parsed, loc, key, value)


def _key_env(parsed: _Parsed, loc: Loc, key: str, value: Any) -> None:
    parsed.endpoint["key_env"] = _text(parsed, loc, key, value)


def _key_required(parsed: _Parsed, loc: Loc, key: str, value: Any) -> None:
    parsed.endpoint["key_optional"] = not expect(parsed.src, loc, value, bool, "true or false")


_HANDLERS: dict[str, Callable[[_Parsed, Loc, str, Any], None]] = {
    "apiBaseUrl": _base_url, "apiHost": _base_url, "apiKey": _api_key, "apiKeyEnvar": _key_env,
    "apiKeyRequired": _key_required, "headers": _headers, "organization": _organization,
    "response_format": _response_format, "passthrough": _passthrough, "n": _n, "reasoning_effort": _reasoning_effort,
    "thinking": _thinking, "generationConfig": _generation_config, "tools": _tools, "tool_choice": _tool_choice,
}


def _entry(parsed: _Parsed, loc: Loc, key: str, value: Any) -> None:
    if key in _PRICE_KEYS:
        parsed.ctx.unsupported(parsed.src, loc, f"config.{key}")
    elif key in _HANDLERS:
        _HANDLERS[key](parsed, loc, key, value)
    elif key in _SAMPLING:
        _sampling(parsed, loc, key, value)
    elif key in _BODY_FIELDS.get(parsed.wire, ()):
        parsed.body[key] = value
    elif parsed.wire == "ollama" and key in _OLLAMA_OPTIONS:
        parsed.nested_body("options", key, value)
    else:
        parsed.refuse(loc, key, "it would change what is sent, and it is not supported")


def wire_of(ref: str) -> str:
    """The wire format a target's calls use (a provider configured elsewhere: OpenAI-compatible)."""
    spec = PROVIDERS.get(ModelRef.parse(ref).provider)
    return spec.wire if spec is not None else "openai_chat"


def _check_thinking(parsed: _Parsed, params: dict[str, Any]) -> None:
    """Anthropic's extended thinking with what it cannot take (a budget under 1024, a temperature, a low top_p):
    the load fails at the thinking setting's line, not every call."""
    where = parsed.where.get("thinking_budget") or parsed.where.get("reasoning_effort")
    if parsed.wire != "anthropic" or where is None:
        return
    try:
        anthropic_thinking(validated(Params, params), parsed.shown)
    except ConfigError as exc:
        raise parsed.src.located(where, exc) from None


def provider_config(ctx: Context, src: Src, loc: Loc, config: Any, ref: str,
                    shown: str) -> tuple[dict[str, Any], EndpointOverrides | None]:
    """The parameters and the endpoint a provider's ``config`` (at ``loc``) gives the target ``ref`` (written
    ``shown``); a key that cannot be honoured fails at its line."""
    expect(src, loc, config, dict, "a mapping of settings")
    parsed = _Parsed(ctx, src, wire_of(ref), shown)
    for key, value in config.items():
        _entry(parsed, (*loc, key), str(key), value)
    tools = _tool_params(parsed)
    try:
        params = {**PromptParams.model_validate(parsed.params).model_dump(exclude_defaults=True), **tools}
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0])
        raise src.error(parsed.where[name], f"{name}: {first['msg']}") from None
    _check_thinking(parsed, params)
    if not (parsed.endpoint or parsed.headers or parsed.body):
        return params, None
    return params, EndpointOverrides(headers=parsed.headers, body=parsed.body, **parsed.endpoint)


def prompt_filter(ctx: Context, src: Src, loc: Loc, value: Any) -> tuple[str, ...] | None:
    """promptfoo's provider ``prompts``: the labels of the prompts run on it. A label that names none of the
    suite's prompts is an error (the provider would run nothing)."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else expect(src, loc, value, list, "a list of prompt labels")
    labels = tuple(str(expect(src, (*loc, i), item, str, "a prompt label")) for i, item in enumerate(items))
    for i, label in enumerate(labels):
        if not any(p == label or p.startswith(f"{label}:") for p in ctx.prompt_labels):
            known = ", ".join(ctx.prompt_labels)
            raise src.error(loc if isinstance(value, str) else (*loc, i), f"no prompt labelled '{label}'",
                            f"the prompts are: {known}")
    return labels


def check_provider_keys(src: Src, loc: Loc, value: Any) -> None:
    """A grader written as a mapping has promptfoo's ``id``, ``label`` and ``config``, and nothing else."""
    expect(src, loc, value, dict, "a provider mapping")
    for key in value:
        if key not in ("id", "label", "config"):
            raise src.error((*loc, key), f"unknown key '{key}' in a provider", "the keys are: config, id, label")


def configured_judge(ctx: Context, src: Src, loc: Loc, value: dict[str, Any], ref: str) -> str:
    """A judge or assertion provider written ``{id, label, config}``: registered in ``ctx.judges`` when its config
    sets anything, under the name assertions then give it (its label, else its target; numbered when taken)."""
    check_provider_keys(src, loc, value)
    params, endpoint = provider_config(ctx, src, (*loc, "config"), value.get("config") or {}, ref, str(value["id"]))
    label = value.get("label")
    name = ref if label is None else str(expect(src, (*loc, "label"), label, str, "a label"))
    if not params and endpoint is None and label is None:
        return ref
    return register_judge(ctx, SuiteTarget(ref=ref, label=name, params=params, endpoint=endpoint))


def register_judge(ctx: Context, judge: SuiteTarget) -> str:
    """``judge`` in ``ctx.judges`` under its label (numbered when another judge has it): the name assertions then
    give it (:attr:`~workbench.core.evals.model.Suite.judges`)."""
    name = judge.label
    taken = ctx.judges.get(name)
    number = 1
    while taken is not None and taken != judge:
        number += 1
        name = f"{judge.label} #{number}"
        taken = ctx.judges.get(name)
    ctx.judges[name] = judge
    return name
