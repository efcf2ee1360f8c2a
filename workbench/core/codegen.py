"""Ready-to-run code for one request on one target: Python (httpx2, or the official SDK) or curl.

The URL, headers and body come from the target's own wire adapter, so the code sends exactly what a
race sends (streaming, ``max_tokens`` explicit). The key is read from the provider's environment
variable at run time and never written into the code; the base URL honours the provider's base-URL
variable, with the registry's default. Attached files are read from their paths and base64-encoded when the
Python code runs, never inlined; curl cannot encode a file, so its command carries them inlined as base64 in a
body file it sends (``--data-binary @FILE``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import httpx2

from workbench.core.endpoint import Endpoint
from workbench.core.errors import ConfigError
from workbench.core.providers.base import HttpProvider
from workbench.core.registry import FAKE_PATH_PREFIX, PROVIDERS, ProviderSpec, default_max_tokens, wire_adapter
from workbench.core.request import ChatRequest, ModelRef

Lang = Literal["python", "curl"]
_WIRE_NAMES = {"openai_chat": "OpenAI Chat Completions", "anthropic": "Anthropic Messages",
               "gemini": "Gemini streamGenerateContent", "ollama": "Ollama /api/chat"}
_SDKS = {"openai_chat": "openai", "anthropic": "anthropic"}
_KEY_MARK = "\x00key\x00"
_FILE_MARK = re.compile("\x00file(\\d+)\x00")
"""Where an attachment's base64 data goes in the body: the code reads file N (:func:`_marked`) there."""


@dataclass(frozen=True, slots=True)
class _Wire:
    """Everything the code needs, from the adapter: where, which headers, what body."""

    spec: ProviderSpec
    path: str
    headers: dict[str, str]
    key_header: tuple[str, str] | None
    """(header name, the text before the key: ``Bearer `` or empty)."""
    body: dict[str, Any]
    files: tuple[str, ...] = ()
    """The attached files' paths, read and encoded by the code (``attached(N)``)."""


def _marked(request: ChatRequest) -> tuple[ChatRequest, tuple[str, ...]]:
    """The request with each attachment's data replaced by a mark the code turns into ``attached(N)``, and the
    files' absolute paths."""
    files: list[str] = []
    messages = []
    for message in request.messages:
        marked = []
        for a in message.attachments:
            marked.append(replace(a, data=f"\x00file{len(files)}\x00"))
            files.append(str(Path(a.path or a.name).expanduser().resolve()))
        messages.append(replace(message, attachments=tuple(marked)) if marked else message)
    return replace(request, messages=tuple(messages)), tuple(files)


def _wire(request: ChatRequest, target: str, providers: Mapping[str, ProviderSpec]) -> _Wire:
    ref = ModelRef.parse(target)
    spec = providers.get(ref.provider)
    if spec is None:
        raise ConfigError(f"unknown provider '{ref.provider}' in '{ref}'",
                          f"use one of: {', '.join(sorted(providers))}")
    if spec.wire not in _WIRE_NAMES:
        raise ConfigError(f"{ref}: no code generation for the {spec.wire} wire format",
                          "pick a target on Chat Completions, Anthropic Messages, Gemini or Ollama (e.g. openai/...)")
    endpoint = Endpoint(provider=spec.name, model=ref.model, base_url="", wire=spec.wire,
                        api_key=_KEY_MARK if spec.key_env else None,
                        default_max_tokens=default_max_tokens(ref.model))
    adapter: HttpProvider = wire_adapter(spec.wire)(endpoint, httpx2.AsyncClient())  # only builds; never sends
    request, files = _marked(adapter.resolve(request))
    headers, key_header = {"content-type": "application/json"}, None
    for name, value in adapter.headers().items():
        if _KEY_MARK in value:
            key_header = (name, value.replace(_KEY_MARK, ""))
        else:
            headers[name] = value
    return _Wire(spec, adapter.url(request), headers, key_header, adapter.body(request), files)


def generate(request: ChatRequest, target: str, *, lang: Lang = "python", sdk: bool = False,
             providers: Mapping[str, ProviderSpec] | None = None, title: str | None = None) -> str:
    """The code, as text. ``title`` (e.g. ``prompt greet v3``) heads it as a comment."""
    wire = _wire(request, target, PROVIDERS if providers is None else providers)
    heading = f"# {title + ': ' if title else ''}{target} ({_WIRE_NAMES[wire.spec.wire]})\n"
    if lang == "curl":
        if sdk:
            raise ConfigError("--sdk is for Python only", "drop --sdk, or use --lang python")
        return heading + _curl(wire, [a.data for m in request.messages for a in m.attachments])
    if not sdk:
        return heading + _attached(_httpx(wire), wire)
    sdk_name = _SDKS.get(wire.spec.wire)
    if sdk_name is None:
        raise ConfigError(f"no official SDK variant for {target}", "drop --sdk: the httpx2 code works for it")
    return heading + _attached(_openai_sdk(wire) if sdk_name == "openai" else _anthropic_sdk(wire), wire)


def _attached(code: str, wire: _Wire) -> str:
    """The code with the reader of the attached files (``attached(N)``: file N's bytes in base64) after its
    imports."""
    if not wire.files:
        return code
    lines = code.splitlines(keepends=True)
    end = max(i for i, line in enumerate(lines) if line.startswith(("import ", "from "))) + 1
    reader = ("\n"
              f"FILES = {_literal(list(wire.files))}\n\n\n"
              "def attached(index):\n"
              '    """An attached file\'s bytes in base64, read from its path."""\n'
              "    return base64.b64encode(Path(FILES[index]).read_bytes()).decode()\n\n")
    stdlib = lines.index("\n") if "\n" in lines[:end] else end  # the standard library's imports come first
    return ("import base64\n" + "".join(lines[:stdlib]) + "from pathlib import Path\n" + "".join(lines[stdlib:end])
            + reader + "".join(lines[end:]))


# --- pieces shared by the variants ---------------------------------------------------------------------------------


def _key_env(wire: _Wire) -> str | None:
    return wire.spec.key_env[0] if wire.spec.key_env else None


def _base_python(wire: _Wire) -> str:
    """A Python expression for the base URL: the override variable, else the default."""
    env = wire.spec.base_url_env[0]
    if wire.spec.base_url is None:  # the fake server: no default, its URL must be set
        return f'os.environ["{env}"].rstrip("/") + {FAKE_PATH_PREFIX.get(wire.spec.wire, "")!r}'
    return f'os.environ.get("{env}", {wire.spec.base_url!r}).rstrip("/")'


def _literal(value: Any, depth: int = 0) -> str:
    """A Python literal for JSON-like data, one entry per line (the body reads like the JSON it becomes)."""
    pad, inner = "    " * depth, "    " * (depth + 1)
    if isinstance(value, dict) and value:
        entries = "".join(f"{inner}{k!r}: {_literal(v, depth + 1)},\n" for k, v in value.items())
        return "{\n" + entries + pad + "}"
    if isinstance(value, list) and value:
        return "[\n" + "".join(f"{inner}{_literal(v, depth + 1)},\n" for v in value) + pad + "]"
    if isinstance(value, str) and "\x00file" in value:  # an attachment's data: read from its file at run time
        pieces = _FILE_MARK.split(value)
        return " + ".join(f"attached({piece})" if i % 2 else repr(piece)
                          for i, piece in enumerate(pieces) if i % 2 or piece)
    return repr(value)


def _key_python(wire: _Wire) -> str:
    env = _key_env(wire)
    if env is None:
        return ""
    if wire.spec.local:
        return f'key = os.environ.get("{env}")  # optional for a local server\n'
    return f'key = os.environ["{env}"]\n'


# --- variants --------------------------------------------------------------------------------------------------

_PRINT_DELTAS = {
    "openai_chat": """\
        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
            continue
        for choice in json.loads(line[5:]).get("choices") or []:
            delta = choice.get("delta") or {}
            print(delta.get("content") or "", end="", flush=True)
            for call in delta.get("tool_calls") or []:  # a tool call: its name, then its arguments in pieces
                function = call.get("function") or {}
                if function.get("name"):
                    print(f"\\ntool call {function['name']}: ", end="")
                print(function.get("arguments") or "", end="", flush=True)
""",
    "anthropic": """\
        if not line.startswith("data:"):
            continue
        event = json.loads(line[5:])
        if event.get("type") == "content_block_delta" and event["delta"].get("type") == "text_delta":
            print(event["delta"]["text"], end="", flush=True)
        elif event.get("type") == "content_block_start" and event["content_block"].get("type") == "tool_use":
            print(f"\\ntool call {event['content_block']['name']}: ", end="")
        elif event.get("type") == "content_block_delta" and event["delta"].get("type") == "input_json_delta":
            print(event["delta"]["partial_json"], end="", flush=True)
""",
    "gemini": """\
        if not line.startswith("data:"):
            continue
        for candidate in (json.loads(line[5:]).get("candidates") or [])[:1]:
            for part in (candidate.get("content") or {}).get("parts") or []:
                if part.get("text") and not part.get("thought"):
                    print(part["text"], end="", flush=True)
                elif part.get("functionCall"):
                    call = part["functionCall"]
                    print(f"\\ntool call {call['name']}: {json.dumps(call.get('args') or {}, separators=(',', ':'))}")
""",
    "ollama": """\
        if line.strip():
            message = json.loads(line).get("message") or {}
            print(message.get("content") or "", end="", flush=True)
            for call in message.get("tool_calls") or []:
                function = call["function"]
                print(f"\\ntool call {function['name']}: {json.dumps(function['arguments'], separators=(',', ':'))}")
""",
}


def _httpx(wire: _Wire) -> str:
    headers = f"headers = {_literal(wire.headers)}\n"
    if wire.key_header is not None:
        name, prefix = wire.key_header
        value = f'{prefix!r} + key' if prefix else "key"
        headers += (f"if key:\n    headers[{name!r}] = {value}\n" if wire.spec.local
                    else f"headers[{name!r}] = {value}\n")
    return (
        "import json\nimport os\n\nimport httpx2\n\n"
        f"url = {_base_python(wire)} + {wire.path!r}\n"
        f"{_key_python(wire)}{headers}"
        f"body = {_literal(wire.body)}\n\n"
        'with httpx2.stream("POST", url, headers=headers, json=body, timeout=600) as response:\n'
        "    if response.is_error:\n"
        '        raise SystemExit(f"HTTP {response.status_code}: {response.read().decode()}")\n'
        "    for line in response.iter_lines():\n"
        f"{_PRINT_DELTAS[wire.spec.wire]}"
        "print()\n"
    )


def _sdk_key(wire: _Wire) -> str:
    env = _key_env(wire)
    if env is None:
        return '"none"'
    return f'os.environ.get("{env}", "none")' if wire.spec.local else f'os.environ["{env}"]'


def _openai_sdk(wire: _Wire) -> str:
    return (
        "import os\n\nfrom openai import OpenAI\n\n"
        f"client = OpenAI(base_url={_base_python(wire)}, api_key={_sdk_key(wire)})\n"
        f"body = {_literal(wire.body)}\n\n"
        "for chunk in client.chat.completions.create(**body):\n"
        "    for choice in chunk.choices:\n"
        '        print(choice.delta.content or "", end="", flush=True)\n'
        "        for call in choice.delta.tool_calls or []:  # a tool call: its name, then its arguments in pieces\n"
        "            if call.function and call.function.name:\n"
        '                print(f"\\ntool call {call.function.name}: ", end="")\n'
        '            print(call.function and call.function.arguments or "", end="", flush=True)\n'
        "print()\n"
    )


def _anthropic_sdk(wire: _Wire) -> str:
    body = dict(wire.body)
    extra = {key: body.pop(key) for key in ("output_config",) if key in body}  # newer than some SDK versions
    call = "client.messages.create(**body" + (", extra_body=extra_body)" if extra else ")")
    return (
        "import os\n\nimport anthropic\n\n"
        f"client = anthropic.Anthropic(base_url={_base_python(wire)}, api_key={_sdk_key(wire)})\n"
        f"body = {_literal(body)}\n"
        + (f"extra_body = {_literal(extra)}\n" if extra else "")
        + f"\nfor event in {call}:\n"
        '    if event.type == "content_block_delta" and event.delta.type == "text_delta":\n'
        '        print(event.delta.text, end="", flush=True)\n'
        '    elif event.type == "content_block_start" and event.content_block.type == "tool_use":\n'
        '        print(f"\\ntool call {event.content_block.name}: ", end="")\n'
        '    elif event.type == "content_block_delta" and event.delta.type == "input_json_delta":\n'
        '        print(event.delta.partial_json, end="", flush=True)\n'
        "print()\n"
    )


def _inlined(value: Any, data: list[str]) -> Any:
    """``value`` with each attachment's mark replaced by its base64 data."""
    if isinstance(value, dict):
        return {k: _inlined(v, data) for k, v in value.items()}
    if isinstance(value, list):
        return [_inlined(v, data) for v in value]
    if isinstance(value, str) and "\x00file" in value:
        return _FILE_MARK.sub(lambda m: data[int(m[1])], value)
    return value


def _curl(wire: _Wire, data: list[str]) -> str:
    """A curl command that streams the reply. Attached files (curl cannot encode them) are inlined in the body as
    base64, and the body, too large for a command line, is written to a temporary file sent with
    ``--data-binary @FILE``."""
    env = wire.spec.base_url_env[0]
    if wire.spec.base_url is None:
        base = f"${{{env}}}{FAKE_PATH_PREFIX.get(wire.spec.wire, '')}"
    else:
        base = f"${{{env}:-{wire.spec.base_url}}}"
    lines = [f'curl -sN "{base}{wire.path}"']
    lines += [f'  -H "{name}: {value}"' for name, value in wire.headers.items()]
    note = ""
    if wire.key_header is not None:
        name, prefix = wire.key_header
        header = f'-H "{name}: {prefix}${_key_env(wire)}"'
        if wire.spec.local:
            note = f"# add {header} if the server needs a key\n"
        else:
            lines.append(f"  {header}")
    if not wire.files:
        lines.append("  -d @- <<'JSON'")
        return note + " \\\n".join(lines) + "\n" + json.dumps(wire.body, indent=2, ensure_ascii=False) + "\nJSON\n"
    lines.append('  --data-binary @"$body"')
    files = ", ".join(Path(f).name for f in wire.files)
    return (f"# the attached files ({files}) are inlined in the body as base64: it is written to a temporary file\n"
            'body="$(mktemp)"\ntrap \'rm -f "$body"\' EXIT\n'
            f"cat > \"$body\" <<'JSON'\n{json.dumps(_inlined(wire.body, data), indent=2, ensure_ascii=False)}\nJSON\n"
            + note + " \\\n".join(lines) + "\n")
