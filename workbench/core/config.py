"""Configuration: the user config file and the workspace's ``workbench.toml``, validated, with sources.

The user file (``config.toml`` in the platform's config dir) is read first, the workspace file on
top (table by table, key by key). Every error names the file, the line and the key. Keys never live
here: a provider names the environment variable (or keyring entry) its key comes from.

    [defaults]
    targets = ["openai/gpt-4.1-mini", "anthropic/claude-sonnet-4-5"]
    max_tokens = 1024
    temperature = 0.7

    [providers.openai]            # change a built-in provider: use the Responses API
    wire = "openai_responses"

    [providers.mylab]             # add an OpenAI-compatible endpoint
    wire = "openai_chat"
    base_url = "http://gpu-box:8000/v1"
    key_env = "MYLAB_API_KEY"     # optional: local servers often need none

    [aliases]
    fast = "groq/llama-3.3-70b-versatile"

    [traces]
    metadata_only = false
    redact = ["email", "card", "api_key"]
    [traces.redact_custom]
    order_id = "ORD-\\\\d{6}"

    [team]                        # the team store (see workbench.core.team.target)
    url = "postgresql://alice@db.example.com/workbench"

    [network]                     # proxies, trust, HTTP/2 (see workbench.core.network)
    proxy = "socks5h://127.0.0.1:1080"
    ca_bundle = "~/corp-ca.pem"
    [network.providers.ollama]
    proxy = "none"

    [proxy]
    use_keyring = true            # workbench proxy adds your key to requests that carry none (default: off)
    [proxy.routes.openai]         # workbench proxy: retries, fallbacks, rate limits on this route (see
    policy = "resilient"          # workbench.core.capture.resilient); "pass-through" is the default

plus ``[policy]`` (see :mod:`workbench.core.policy`) and ``[prices]`` (see :mod:`workbench.core.pricing`).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workbench.core.errors import ConfigError
from workbench.core.network import Network, resolve_network
from workbench.core.network_options import NetworkSection
from workbench.core.policy import PolicyError, PolicySet, policies_from
from workbench.core.pricing import PriceBook, PriceError, prices_from
from workbench.core.registry import PROVIDERS, WIRES, ProviderSpec, base_url_problem
from workbench.core.traces.redact import BUILTIN_RULES, Redactor
from workbench.core.workspace import WORKSPACE_FILE, find_workspace

if TYPE_CHECKING:
    from workbench.core.team.target import TeamTarget

Wire = Literal["openai_chat", "openai_responses", "anthropic", "gemini", "ollama"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Section):
    targets: tuple[str, ...] = ()
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)


class ProviderEntry(_Section):
    wire: Wire | None = None
    base_url: str | None = None
    key_env: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9_]*$")
    local: bool = False


class TraceSettings(_Section):
    path: str | None = None
    metadata_only: bool = False
    redact: tuple[str, ...] = ("email", "card", "api_key")
    redact_custom: dict[str, str] = {}


class TeamSection(_Section):
    url: str | None = None
    """The team store (``postgresql://USER@HOST:PORT/DATABASE``; see :mod:`workbench.core.team.target`)."""


class ProxyRoute(_Section):
    policy: Literal["pass-through", "resilient"] = "pass-through"


class ProxySection(_Section):
    routes: dict[str, ProxyRoute] = {}
    """``workbench proxy``'s routes by provider name (``/openai/...``: ``openai``)."""
    use_keyring: bool = False
    """Add the provider's key (environment, else keyring) to a proxied request that carries none
    (:mod:`workbench.core.capture.access`); off: the application's own key, or none, goes through."""

    def resilient(self) -> frozenset[str]:
        return frozenset(name for name, route in self.routes.items() if route.policy == "resilient")


class Config(_Section):
    defaults: Defaults = Defaults()
    providers: dict[str, ProviderEntry] = {}
    aliases: dict[str, str] = {}
    traces: TraceSettings = TraceSettings()
    policy: dict[str, Any] = {}
    prices: dict[str, Any] = {}
    network: NetworkSection = NetworkSection()
    team: TeamSection = TeamSection()
    proxy: ProxySection = ProxySection()

    def provider_specs(self) -> dict[str, ProviderSpec]:
        """The built-in providers with this configuration's changes and additions."""
        specs = dict(PROVIDERS)
        for name, entry in self.providers.items():
            base = specs.get(name)
            if base is None:
                key_env = (entry.key_env,) if entry.key_env else ()
                specs[name] = ProviderSpec(name, entry.wire or "openai_chat", entry.base_url, key_env, (),
                                           entry.local or not key_env)
                continue
            specs[name] = ProviderSpec(
                name, entry.wire or base.wire, entry.base_url or base.base_url,
                (entry.key_env,) if entry.key_env else base.key_env, base.base_url_env, base.local or entry.local)
        return specs

    def expand(self, target: str) -> str:
        """A target with an alias resolved (``fast`` → ``groq/llama-…``)."""
        return self.aliases.get(target, target)


@dataclass
class LoadedConfig:
    config: Config
    sources: list[Path] = field(default_factory=list)
    origin: dict[str, Path] = field(default_factory=dict)
    """Dotted key → the file it came from (for ``config show``)."""


def user_config_path() -> Path:
    return Path(platformdirs.user_config_dir("workbench")) / "config.toml"


def load_config(workspace_file: Path | None, user_file: Path | None = None) -> LoadedConfig:
    """Merge the user file and the workspace file (either may be missing) and validate the result."""
    merged: dict[str, Any] = {}
    loaded = LoadedConfig(Config())
    for path in (user_file if user_file is not None else user_config_path(), workspace_file):
        if path is None or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}", "fix the TOML syntax at that line") from None
        _check(data, path, text)
        _merge(merged, data, loaded.origin, path)
        loaded.sources.append(path)
    loaded.config = Config.model_validate(merged)
    _check_default_targets(loaded)
    return loaded


def _check_default_targets(loaded: LoadedConfig) -> None:
    """Each ``[defaults] targets`` entry names a known provider (after aliases and the providers of both files),
    else an error at the line of the file that set it."""
    config = loaded.config
    specs = config.provider_specs()
    for target in config.defaults.targets:
        provider, slash, model = config.expand(target).partition("/")
        if slash and model and provider in specs:
            continue
        path = loaded.origin["defaults.targets"]
        line = _line_of(path.read_text(encoding="utf-8"), ["defaults", "targets"])
        if slash and model:
            raise ConfigError(f"{path}:{line}: defaults.targets: unknown provider '{provider}' in '{target}'",
                              f"use one of: {', '.join(sorted(specs))} (or add it under [providers.{provider}])")
        raise ConfigError(f"{path}:{line}: defaults.targets: '{target}' is neither provider/model nor an alias",
                          "write provider/model (e.g. openai/gpt-4.1-mini) or define it under [aliases]")


def _check(data: dict[str, Any], path: Path, text: str) -> None:
    """Validate one file on its own, so an error can name its file and line."""
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        keys = [str(p) for p in first["loc"]]
        raise ConfigError(f"{path}:{_line_of(text, keys)}: {'.'.join(keys)}: {first['msg']}",
                          "see the configuration section of the README") from None
    for name, entry in config.providers.items():
        if name not in PROVIDERS and entry.base_url is None:
            raise ConfigError(f"{path}:{_line_of(text, ['providers', name])}: providers.{name}: a new provider "
                              "needs base_url", "add base_url = \"http://host:port/v1\"")
        if entry.base_url is not None and (problem := base_url_problem(entry.base_url)):
            raise ConfigError(f"{path}:{_line_of(text, ['providers', name, 'base_url'])}: providers.{name}.base_url: "
                              f"invalid base URL: {problem}", "write the server's URL, e.g. \"http://host:port/v1\"")
        if entry.wire is not None and entry.wire not in WIRES:
            raise ConfigError(f"{path}:{_line_of(text, ['providers', name, 'wire'])}: providers.{name}.wire: "
                              f"unknown wire {entry.wire}", f"one of: {', '.join(WIRES)}")
    try:
        policies_from(config.policy, str(path))
        prices_from(config.prices, str(path))
    except (PolicyError, PriceError) as exc:
        raise ConfigError(f"{path}:{_line_of(text, list(exc.keys))}: {_dotted(exc.keys)}: {exc.problem}",
                          exc.hint) from None
    if config.team.url is not None:
        from workbench.core.team.target import url_problem

        if problem := url_problem(config.team.url, in_file=True):
            raise ConfigError(f"{path}:{_line_of(text, ['team', 'url'])}: team.url: {problem}",
                              'write it as postgresql://USER@HOST:PORT/DATABASE (see "Team store" in the README)')
    specs = config.provider_specs()
    for name in config.proxy.routes:
        if name not in specs:
            raise ConfigError(f"{path}:{_line_of(text, ['proxy', 'routes', name])}: proxy.routes.{name}: no provider "
                              f"is named {name}", f"a route is a provider's name: {', '.join(sorted(specs))}")
    unknown = [r for r in config.traces.redact if r not in BUILTIN_RULES]
    if unknown:
        raise ConfigError(f"{path}:{_line_of(text, ['traces', 'redact'])}: traces.redact: unknown rule {unknown[0]}",
                          f"built-in rules: {', '.join(BUILTIN_RULES)}; add others under [traces.redact_custom]")
    for name, pattern in config.traces.redact_custom.items():
        try:
            re.compile(pattern)
        except re.error as err:
            raise ConfigError(f"{path}:{_line_of(text, ['traces', 'redact_custom', name])}: "
                              f"traces.redact_custom.{name}: bad regex ({err})",
                              "write a Python regular expression (in TOML, single quotes avoid escaping)") from None


def _dotted(keys: Sequence[str]) -> str:
    """A key's path as TOML writes it: ``prices."fake/*".input_per_mtok``."""
    return ".".join(k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k) for k in keys)


def _line_of(text: str, keys: list[str]) -> int:
    """The line where a dotted key is set: its table header, then the key inside it (best effort)."""
    lines = text.splitlines()
    for cut in range(len(keys), 0, -1):
        table, key = keys[:cut - 1], keys[cut - 1]
        start = 0
        if table:
            header = re.compile(r"^\s*\[+\s*" + r"\s*\.\s*".join(f'"?{re.escape(t)}"?' for t in table) + r"\s*\]+")
            start = next((i + 1 for i, line in enumerate(lines) if header.match(line)), -1)
            if start < 0:
                continue
        assign = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=|^\s*\[+\s*{re.escape(key)}\s*[\].]")
        for i in range(start, len(lines)):
            if i > start and lines[i].lstrip().startswith("[") and table:
                break
            if assign.match(lines[i]):
                return i + 1
    return 1


def _merge(into: dict[str, Any], data: dict[str, Any], origin: dict[str, Path], path: Path,
           prefix: str = "") -> None:
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(into.setdefault(key, {}), dict):
            _merge(into[key], value, origin, path, dotted + ".")
        else:
            into[key] = value
            origin[dotted] = path


@dataclass
class Settings:
    """Everything the faces need from configuration, loaded once."""

    loaded: LoadedConfig
    policies: PolicySet
    prices: PriceBook
    workspace: Path | None

    @property
    def config(self) -> Config:
        return self.loaded.config

    def redactor(self) -> Redactor:
        traces = self.config.traces
        return Redactor.build(traces.redact, traces.redact_custom, metadata_only=traces.metadata_only)

    def network(self, env: Mapping[str, str] | None = None, *, check_tls: bool = True) -> Network:
        """The effective network settings (``[network]`` over the environment); raises :class:`ConfigError`
        (see :func:`resolve_network` for ``check_tls``)."""
        from workbench.core.registry import base_url_of

        specs = self.config.provider_specs()
        urls = {name: url for name in self.config.network.providers
                if (url := base_url_of(specs[name], env) if name in specs else None)}
        source = str(self.loaded.origin.get("network") or next(
            (path for key, path in self.loaded.origin.items() if key.startswith("network.")), "[network]"))
        return resolve_network(self.config.network, env, urls, f"{source} [network]" if source != "[network]"
                               else source, check_tls=check_tls)

    def team_target(self, env: Mapping[str, str]) -> TeamTarget:
        """The team store: ``WORKBENCH_TEAM_URL``, else ``[team] url``; a :class:`ConfigError` when neither is set."""
        from workbench.core.team.target import resolve_target

        return resolve_target(env, self.config.team.url, f"{self.loaded.origin.get('team.url', 'configuration')} "
                                                          "[team] url")

    def trace_path(self, env: Mapping[str, str]) -> Path:
        """``WORKBENCH_TRACES``, else ``[traces] path`` (relative to the workspace), else the default."""
        from workbench.core.traces.store import default_path

        if not env.get("WORKBENCH_TRACES") and self.config.traces.path:
            return (self.workspace or Path.cwd()) / Path(self.config.traces.path).expanduser()
        return default_path(self.workspace or Path.cwd(), env)


def load_settings(explicit: Path | None = None, cwd: Path | None = None, user_file: Path | None = None) -> Settings:
    """The user config plus the workspace's ``workbench.toml`` (or ``explicit``), with policies and prices."""
    if explicit is not None and not explicit.is_file():
        raise ConfigError(f"no configuration file {explicit}", "check the path, or run `workbench init`")
    workspace = explicit.parent if explicit is not None else find_workspace(cwd or Path.cwd())
    workspace_file = explicit if explicit is not None else (workspace / WORKSPACE_FILE if workspace else None)
    loaded = load_config(workspace_file, user_file)
    source = str(loaded.origin.get("policy") or workspace_file or "configuration")
    return Settings(loaded, policies_from(loaded.config.policy, source),
                    prices_from(loaded.config.prices, source), workspace)
