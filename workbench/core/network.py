"""Network settings: proxies, trust, HTTP/2 and connect retries, from ``[network]`` and the environment.

Precedence for each setting: a provider's own table (``[network.providers.NAME]``) beats the
``[network]`` table, which beats the environment, which beats the default. The environment follows the
usual conventions (lower case wins over upper case, as curl does):

- ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY``: ``http://``, ``https://``, ``socks5://`` or
  ``socks5h://`` (the proxy resolves names) URLs; ``NO_PROXY``: hosts, ``.domains``, IPs and CIDRs, or ``*``;
- ``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE`` (a CA bundle replacing the default trust), ``SSL_CERT_DIR``.

With no CA bundle, TLS trusts the operating system's store (httpx2's default context: truststore on
Windows and macOS, the system's OpenSSL store on Linux). ``verify = false`` is allowed, and warned
about on every run. Connecting tries every address of a host (IPv6 and IPv4, happy eyeballs) and
retries a failed connect ``connect_retries`` times.

:class:`Network` is a frozen, picklable value: the faces resolve it once and hand it to the network
process, which builds its client with :func:`workbench.core.httpclient.new_client`.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from workbench.core.errors import ConfigError

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
DEFAULT_CONNECT_RETRIES = 2


class NetworkOptions(BaseModel):
    """One network table: ``[network]`` or ``[network.providers.NAME]``. Unset fields inherit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    proxy: str | None = None
    """A proxy for every origin; ``"none"`` connects directly whatever the environment says."""
    no_proxy: str | None = None
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    verify: bool | None = None
    http2: bool | None = None
    connect_retries: int | None = Field(default=None, ge=0, le=10)


class NetworkSection(NetworkOptions):
    providers: dict[str, NetworkOptions] = {}


@dataclass(frozen=True, slots=True)
class Route:
    """Where requests for one URL pattern go: through ``proxy``, or directly when it is ``None``."""

    pattern: str
    proxy: str | None


@dataclass(frozen=True, slots=True)
class Network:
    """The effective settings for one origin (or the default), with where each came from."""

    proxy: str | None = None
    no_proxy: tuple[str, ...] = ()
    scheme_proxies: tuple[tuple[str, str], ...] = ()
    """From the environment: (``http``/``https``/``all``, proxy URL); used when ``proxy`` is unset."""
    ca_bundle: str | None = None
    ca_dir: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    verify: bool = True
    http2: bool = False
    connect_retries: int = DEFAULT_CONNECT_RETRIES
    sources: tuple[tuple[str, str], ...] = ()
    """(setting, where its value came from), for ``workbench config show``."""
    per_origin: tuple[tuple[str, Network], ...] = field(default=())
    """Provider overrides: (origin such as ``https://api.openai.com``, its settings)."""

    def routes(self) -> list[Route]:
        """The proxy routes, most specific first as httpx2's mounts are matched (``None``: direct)."""
        direct = [Route(f"all://{host}", None) for host in _no_proxy_patterns(self.no_proxy)]
        if "*" in self.no_proxy:
            return []
        if self.proxy is not None:
            return [*direct, Route("all://", None if self.proxy == "none" else self.proxy)]
        return [*direct, *(Route(f"{scheme}://", url) for scheme, url in self.scheme_proxies)]

    def proxy_for(self, scheme: str, host: str) -> str | None:
        """The proxy for requests to ``host`` (``None``: direct), by the same rules as :meth:`routes`."""
        if _bypassed(host, self.no_proxy):
            return None
        if self.proxy is not None:
            return None if self.proxy == "none" else self.proxy
        by_scheme = dict(self.scheme_proxies)
        return by_scheme.get(scheme) or by_scheme.get("all")

    def ssl_context(self) -> ssl.SSLContext:
        import httpx2

        if not self.verify:
            context = httpx2.create_ssl_context(verify=False, trust_env=False)
        elif self.ca_bundle or self.ca_dir:
            context = ssl.create_default_context(cafile=self.ca_bundle, capath=self.ca_dir)
        else:
            context = httpx2.create_ssl_context(verify=True, trust_env=False)
        if self.client_cert:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context

    def warnings(self) -> list[str]:
        """What to tell the user on every run (TLS verification off)."""
        out = []
        for origin, settings in ((None, self), *self.per_origin):
            if not settings.verify:
                where = f" for {origin}" if origin else ""
                out.append(f"warning: TLS certificates are not verified{where} ([network] verify = false): "
                           "anyone on the path can read and change the traffic, keys included")
        return out

    def describe(self) -> list[tuple[str, str, str]]:
        """(setting, effective value, source) rows for ``workbench config show``."""
        sources = dict(self.sources)
        rows = [
            ("proxy", self._proxy_text(), sources.get("proxy", "default")),
            ("no_proxy", ",".join(self.no_proxy) or "-", sources.get("no_proxy", "default")),
            ("ca_bundle", self.ca_bundle or self.ca_dir or "the OS trust store",
             sources.get("ca_bundle", "default")),
            ("client_cert", self.client_cert or "-", sources.get("client_cert", "default")),
            ("verify", str(self.verify).lower(), sources.get("verify", "default")),
            ("http2", str(self.http2).lower(), sources.get("http2", "default")),
            ("connect_retries", str(self.connect_retries), sources.get("connect_retries", "default")),
            ("ipv6 → ipv4 fallback", "happy eyeballs (250 ms)", "built in"),
        ]
        for origin, settings in self.per_origin:
            own = dict(settings.sources)
            rows.extend((f"{origin} {name}", value, source) for name, value, source in settings.describe()
                        if own.get(name.split()[-1], "").startswith("[network.providers"))
        return rows

    def _proxy_text(self) -> str:
        if self.proxy is not None:
            return redact_url(self.proxy) if self.proxy != "none" else "none (direct)"
        if self.scheme_proxies:
            return ", ".join(f"{scheme}: {redact_url(url)}" for scheme, url in self.scheme_proxies)
        return "none (direct)"


def redact_url(url: str) -> str:
    """A proxy URL without its password (``http://user:***@host:3128``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username}:***@{netloc}").geturl()


def _env(env: Mapping[str, str], name: str) -> tuple[str | None, str]:
    """A variable by the lower-case name first (curl's rule), then the upper-case one: (value, its name)."""
    for candidate in (name.lower(), name.upper()):
        value = env.get(candidate, "").strip()
        if value:
            return value, candidate
    return None, name.upper()


def _check_proxy(url: str, where: str) -> str:
    if url == "none":
        return url
    if "://" not in url:
        url = f"http://{url}"
    parts = urlsplit(url)
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname:
        raise ConfigError(f"{where}: not a proxy URL: {redact_url(url)}",
                          "use http://host:port, https://host:port, socks5://host:port or socks5h://host:port")
    if parts.scheme.startswith("socks"):
        try:
            import socksio  # noqa: F401
        except ImportError:
            raise ConfigError(f"{where}: a SOCKS proxy needs the socksio package",
                              "pip install 'httpx2[socks]'") from None
    return url


def _check_file(path: str, where: str, *, directory: bool = False) -> str:
    expanded = os.path.expanduser(path)
    if not (Path(expanded).is_dir() if directory else Path(expanded).is_file()):
        raise ConfigError(f"{where}: no such {'directory' if directory else 'file'}: {path}",
                          "check the path (a PEM file of CA certificates)")
    return expanded


def _from_env(env: Mapping[str, str]) -> Network:
    sources: dict[str, str] = {}
    proxies: list[tuple[str, str]] = []
    for scheme in ("http", "https", "all"):
        value, name = _env(env, f"{scheme}_proxy")
        if value:
            proxies.append((scheme, _check_proxy(value, name)))
            sources["proxy"] = ", ".join(filter(None, (sources.get("proxy"), name)))
    no_proxy, name = _env(env, "no_proxy")
    if no_proxy:
        sources["no_proxy"] = name
    ca_bundle = ca_dir = None
    for variable in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = env.get(variable, "").strip()
        if value:
            ca_bundle, sources["ca_bundle"] = _check_file(value, variable), variable
            break
    if ca_bundle is None and env.get("SSL_CERT_DIR", "").strip():
        ca_dir = _check_file(env["SSL_CERT_DIR"].strip(), "SSL_CERT_DIR", directory=True)
        sources["ca_bundle"] = "SSL_CERT_DIR"
    return Network(no_proxy=_split(no_proxy), scheme_proxies=tuple(proxies), ca_bundle=ca_bundle, ca_dir=ca_dir,
                   sources=tuple(sources.items()))


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(host.strip() for host in (value or "").split(",") if host.strip())


def _apply(base: Network, options: NetworkOptions, source: str) -> Network:
    """``base`` with the fields ``options`` sets (``source`` names the table, for ``config show``)."""
    changes: dict[str, object] = {}
    sources = dict(base.sources)
    if options.proxy is not None:
        changes["proxy"] = _check_proxy(options.proxy.strip(), f"{source} proxy")
        sources["proxy"] = source
    if options.no_proxy is not None:
        changes["no_proxy"] = _split(options.no_proxy)
        sources["no_proxy"] = source
    if options.ca_bundle is not None:
        changes["ca_bundle"] = _check_file(options.ca_bundle, f"{source} ca_bundle")
        changes["ca_dir"] = None
        sources["ca_bundle"] = source
    if options.client_cert is not None:
        changes["client_cert"] = _check_file(options.client_cert, f"{source} client_cert")
        sources["client_cert"] = source
    if options.client_key is not None:
        changes["client_key"] = _check_file(options.client_key, f"{source} client_key")
    for name in ("verify", "http2", "connect_retries"):
        value = getattr(options, name)
        if value is not None:
            changes[name] = value
            sources[name] = source
    if "client_cert" not in changes and options.client_key is not None and base.client_cert is None:
        raise ConfigError(f"{source} client_key: set client_cert too", "client_cert is the certificate's PEM file")
    return replace(base, sources=tuple(sources.items()), **changes)  # type: ignore[arg-type]


def resolve_network(section: NetworkSection | None, env: Mapping[str, str] | None = None,
                    base_urls: Mapping[str, str] | None = None, source: str = "[network]") -> Network:
    """The effective settings: the environment, then ``[network]``, then each provider's table (keyed by
    the origin of its base URL in ``base_urls``, provider name → URL). Raises :class:`ConfigError`."""
    env = os.environ if env is None else env
    section = section or NetworkSection()
    network = _apply(_from_env(env), section, source)
    overrides = []
    for name, options in section.providers.items():
        url = (base_urls or {}).get(name)
        if url is None:
            raise ConfigError(f"[network.providers.{name}]: unknown provider {name}",
                              "name a built-in provider or one under [providers]")
        parts = urlsplit(url)
        overrides.append((f"{parts.scheme}://{parts.netloc}",
                          _apply(replace(network, per_origin=()), options, f"[network.providers.{name}]")))
    return replace(network, per_origin=tuple(overrides))


def _no_proxy_patterns(hosts: tuple[str, ...]) -> list[str]:
    """``NO_PROXY`` entries as httpx2 URL-pattern hosts (curl's rules: ``.example.com`` and
    ``example.com`` both cover subdomains; IPs and ``localhost`` match exactly)."""
    out = []
    for host in hosts:
        if host == "*":
            continue
        bare = host.split("://", 1)[-1]
        try:
            address = ipaddress.ip_address(bare.strip("[]"))
        except ValueError:
            address = None
        if address is not None:
            out.append(f"[{address}]" if address.version == 6 else str(address))
        elif bare.lower() == "localhost":
            out.append("localhost")
        elif "/" in bare:
            continue  # CIDR ranges: httpx2's patterns match host names only
        else:
            out.append("*" + bare.removeprefix("*").lstrip(".") if not bare.startswith("*.") else bare)
    return out


def _bypassed(host_port: str, no_proxy: tuple[str, ...]) -> bool:
    host = host_port.rsplit(":", 1)[0] if host_port.count(":") == 1 else host_port
    host = host.strip("[]").lower()
    for entry in no_proxy:
        entry = entry.split("://", 1)[-1].lower()
        if entry == "*":
            return True
        entry = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry
        domain = entry.strip("[]").lstrip("*").lstrip(".")
        if host == domain or host.endswith("." + domain):
            return True
    return False
