"""Network settings: proxies, trust, HTTP/2 and connect retries, from ``[network]`` and the environment.

Precedence for each setting: a provider's own table (``[network.providers.NAME]``) beats the
``[network]`` table, which beats the environment, which beats the default. The environment follows the
usual conventions (lower case wins over upper case, as curl does):

- ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY``: ``http://``, ``https://``, ``socks5://`` or
  ``socks5h://`` URLs (with either SOCKS scheme httpx2 sends the host name, so the proxy resolves it);
  ``NO_PROXY``: hosts, ``.domains``, IPs and CIDRs (which match hosts written as IPs), or ``*``;
- ``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE`` (a CA bundle replacing the default trust), ``SSL_CERT_DIR``.

With no CA bundle, TLS trusts the operating system's store (httpx2's default context: truststore on
Windows and macOS, the system's OpenSSL store on Linux). ``verify = false`` is allowed, and warned
about on every run. Connecting tries every address of a host (IPv6 and IPv4, happy eyeballs) and
retries a failed connect ``connect_retries`` times.

:class:`Network` is a frozen, picklable value: the faces resolve it once and hand it to the network
process, which builds its client with :func:`workbench.core.httpclient.new_client`.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from workbench.core.errors import ConfigError
from workbench.core.proxy_url import redact_url

if TYPE_CHECKING:
    from workbench.core.network_options import NetworkOptions, NetworkSection

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
DEFAULT_CONNECT_RETRIES = 0
"""Transport-level connect retries (immediate, with httpcore2's short backoff). The call policy already retries
connection failures with backoff and jitter, so by default the transport does not retry as well."""


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
        if _bypassed(host, self.no_proxy, scheme):
            return None
        if self.proxy is not None:
            return None if self.proxy == "none" else self.proxy
        by_scheme = dict(self.scheme_proxies)
        return by_scheme.get(scheme) or by_scheme.get("all")

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context for these settings; raises :class:`ConfigError` naming the setting whose file is not
        what it should be. Built once per process and file contents (loading a CA bundle costs tens of ms): the
        check when the settings are resolved and every client built with them share it."""
        files = tuple(_stamp(path) for path in (self.ca_bundle, self.ca_dir, self.client_cert, self.client_key))
        return _tls_context(self, files)

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
    try:
        parts = urlsplit(url)
        valid = parts.scheme in PROXY_SCHEMES and bool(parts.hostname) and (parts.port is None or parts.port > 0)
    except ValueError:  # a bad port ("host:99999", "host:abc") or a broken IPv6 literal
        valid = False
    if not valid:
        raise ConfigError(f"{where}: not a proxy URL: {redact_url(url)}",
                          "use http://host:port, https://host:port, socks5://host:port or socks5h://host:port")
    if parts.scheme.startswith("socks"):
        try:
            import socksio  # noqa: F401
        except ImportError:
            raise ConfigError(f"{where}: a SOCKS proxy needs the socksio package",
                              "pip install 'httpx2[socks]'") from None
    return url


def _check_file(path: str, where: str, *, directory: bool = False,
                what: str = "a PEM file of CA certificates") -> str:
    expanded = os.path.expanduser(path)
    if not (Path(expanded).is_dir() if directory else Path(expanded).is_file()):
        raise ConfigError(f"{where}: no such {'directory' if directory else 'file'}: {path}",
                          f"check the path ({'a directory of CA certificates' if directory else what})")
    return expanded


def _from_env(env: Mapping[str, str]) -> Network:
    """The environment's settings, not yet checked: a value ``[network]`` overrides is never used, so it
    must not stop a run (:func:`_check_env` checks those still in force)."""
    sources: dict[str, str] = {}
    proxies: list[tuple[str, str]] = []
    for scheme in ("http", "https", "all"):
        value, name = _env(env, f"{scheme}_proxy")
        if value:
            proxies.append((scheme, value if "://" in value or value == "none" else f"http://{value}"))
            sources["proxy"] = ", ".join(filter(None, (sources.get("proxy"), name)))
    no_proxy, name = _env(env, "no_proxy")
    if no_proxy:
        sources["no_proxy"] = name
    ca_bundle = ca_dir = None
    for variable in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = env.get(variable, "").strip()
        if value:
            ca_bundle, sources["ca_bundle"] = value, variable
            break
    if ca_bundle is None and env.get("SSL_CERT_DIR", "").strip():
        ca_dir, sources["ca_bundle"] = env["SSL_CERT_DIR"].strip(), "SSL_CERT_DIR"
    return Network(no_proxy=_split(no_proxy), scheme_proxies=tuple(proxies), ca_bundle=ca_bundle, ca_dir=ca_dir,
                   sources=tuple(sources.items()))


def _check_env(network: Network, env: Mapping[str, str]) -> Network:
    """``network`` with the environment's values that are still in force checked (raises :class:`ConfigError`)."""
    changes: dict[str, object] = {}
    if network.proxy is None:  # else [network] proxy replaces every *_PROXY variable
        changes["scheme_proxies"] = tuple((scheme, _check_proxy(url, _env(env, f"{scheme}_proxy")[1]))
                                          for scheme, url in network.scheme_proxies)
    source = dict(network.sources).get("ca_bundle")
    if source == "SSL_CERT_DIR" and network.ca_dir:
        changes["ca_dir"] = _check_file(network.ca_dir, source, directory=True)
    elif source in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE") and network.ca_bundle:
        changes["ca_bundle"] = _check_file(network.ca_bundle, source)
    return replace(network, **changes)  # type: ignore[arg-type]


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
        changes["client_cert"] = _check_file(options.client_cert, f"{source} client_cert",
                                             what="the client certificate's PEM file")
        sources["client_cert"] = source
    if options.client_key is not None:
        changes["client_key"] = _check_file(options.client_key, f"{source} client_key",
                                            what="the client certificate's private key, a PEM file")
    for name in ("verify", "http2", "connect_retries"):
        value = getattr(options, name)
        if value is not None:
            changes[name] = value
            sources[name] = source
    if "client_cert" not in changes and options.client_key is not None and base.client_cert is None:
        raise ConfigError(f"{source} client_key: set client_cert too", "client_cert is the certificate's PEM file")
    return replace(base, sources=tuple(sources.items()), **changes)  # type: ignore[arg-type]


def resolve_network(section: NetworkSection | None, env: Mapping[str, str] | None = None,
                    base_urls: Mapping[str, str] | None = None, source: str = "[network]", *,
                    check_tls: bool = True) -> Network:
    """The effective settings: the environment, then ``[network]``, then each provider's table (keyed by
    the origin of its base URL in ``base_urls``, provider name → URL). Raises :class:`ConfigError`, for a
    CA bundle or client certificate that does not load too unless ``check_tls`` is false (then
    :func:`check_tls` says it later: ``workbench run`` checks once its request is on its way)."""
    env = os.environ if env is None else env
    network = _from_env(env) if section is None else _apply(_from_env(env), section, source)
    network = _check_env(network, env)
    overrides = []
    for name, options in (section.providers if section is not None else {}).items():
        url = (base_urls or {}).get(name)
        if url is None:
            raise ConfigError(f"[network.providers.{name}]: unknown provider {name}",
                              "name a built-in provider or one under [providers]")
        parts = urlsplit(url)
        overrides.append((f"{parts.scheme}://{parts.netloc}",
                          _apply(replace(network, per_origin=()), options, f"[network.providers.{name}]")))
    network = replace(network, per_origin=tuple(overrides))
    if check_tls:
        check_network_tls(network)
    return network


def uses_tls(network: Network, urls: Iterable[str | None]) -> bool:
    """Whether calls to ``urls`` (base URLs; ``None``: not known) make a TLS connection: to an ``https://`` origin,
    or through an ``https://`` proxy. Only then do the CA bundle and client certificate matter."""
    for url in urls:
        parts = urlsplit(url) if url else None
        if parts is None or parts.scheme != "http":
            return True
        proxy = network.proxy_for(parts.scheme, parts.hostname or "")
        if proxy is not None and proxy.startswith("https:"):
            return True
    return False


def check_network_tls(network: Network) -> None:
    """Load each setting's CA bundle and client certificate, so a file that is not what it should be is a
    :class:`ConfigError` naming the setting, not an ``ssl.SSLError`` when a client is built."""
    for settings in (network, *(settings for _, settings in network.per_origin)):
        if settings.ca_bundle or settings.ca_dir or settings.client_cert:
            settings.ssl_context()


class _EncryptedKey(Exception):
    pass


def _ask_password() -> bytes:
    raise _EncryptedKey  # never OpenSSL's own prompt on the terminal (the network process has none)


def _stamp(path: str | None) -> tuple[str, int, int] | None:
    """What identifies a file's contents for the context cache (``None``: no file, or none to be read)."""
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return path, stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=16)
def _tls_context(network: Network, files: tuple[tuple[str, int, int] | None, ...]) -> ssl.SSLContext:
    """:meth:`Network.ssl_context` (``files`` is the cache key's part that changes when a file does)."""
    import httpx2

    sources = dict(network.sources)

    def where(setting: str) -> str:
        source = sources.get(setting, "[network]")
        return source if source.isupper() else f"{source} {setting}"  # an environment variable is the setting

    if not network.verify:
        context = httpx2.create_ssl_context(verify=False, trust_env=False)
    elif network.ca_bundle or network.ca_dir:
        try:
            context = ssl.create_default_context(cafile=network.ca_bundle, capath=network.ca_dir)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"{where('ca_bundle')}: cannot load {network.ca_bundle or network.ca_dir}: "
                              f"{_ssl_reason(exc)}", "it must be a PEM file of CA certificates") from None
    else:
        context = httpx2.create_ssl_context(verify=True, trust_env=False)
    if network.client_cert:
        try:
            context.load_cert_chain(network.client_cert, network.client_key, password=_ask_password)
        except _EncryptedKey:
            raise ConfigError(f"{where('client_cert')}: the client key is encrypted",
                              "use a key without a passphrase (openssl pkey -in KEY -out PLAIN_KEY)") from None
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"{where('client_cert')}: cannot load {network.client_cert}"
                              f"{' with ' + network.client_key if network.client_key else ''}: {_ssl_reason(exc)}",
                              "client_cert is a PEM certificate; client_key its PEM private key (or put the key in "
                              "the certificate's file)") from None
    return context


def _ssl_reason(exc: BaseException) -> str:
    reason = str(getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc)
    if "PEM lib" in reason:
        return "not a PEM certificate, or no matching private key"
    return re.sub(r"\s*\(_ssl\.c:\d+\)", "", reason)


def _no_proxy_entry(entry: str) -> tuple[str, int | None]:
    """One ``NO_PROXY`` entry as (host in lower case without brackets, port or ``None``)."""
    bare = entry.split("://", 1)[-1].strip().lower()
    try:
        ipaddress.ip_network(bare.strip("[]"), strict=False)  # an IP or a CIDR range, IPv6 ones without a port
        return bare.strip("[]"), None
    except ValueError:
        pass
    if bare.startswith("["):
        host, _, rest = bare[1:].partition("]")
        port = rest.removeprefix(":")
    elif bare.count(":") == 1:
        host, _, port = bare.partition(":")
    else:
        host, port = bare, ""
    return host, int(port) if port.isdigit() else None


def _network_of(host: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(host, strict=False)
    except ValueError:
        return None


def _no_proxy_patterns(hosts: tuple[str, ...]) -> list[str]:
    """``NO_PROXY`` entries as httpx2 URL-pattern hosts (curl's rules: ``.example.com`` and
    ``example.com`` both cover subdomains; IPs and ``localhost`` match exactly; CIDR ranges match hosts
    written as IPs in them)."""
    out = []
    for entry in hosts:
        host, port = _no_proxy_entry(entry)
        if host in ("*", ""):
            continue
        network = _network_of(host)
        if network is not None and "/" in host:
            address = f"[{network.network_address}]" if network.version == 6 else str(network.network_address)
            out.append(f"{address}/{network.prefixlen}")  # httpx2's CIDR pattern (no port)
            continue
        if network is not None:
            pattern = f"[{network.network_address}]" if network.version == 6 else str(network.network_address)
        elif host == "localhost" or host.startswith("*."):
            pattern = host
        else:
            pattern = "*" + host.lstrip("*").lstrip(".")
        out.append(pattern if port is None else f"{pattern}:{port}")
    return out


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _bypassed(host_port: str, no_proxy: tuple[str, ...], scheme: str = "") -> bool:
    """Whether ``NO_PROXY`` sends requests to ``host_port`` (``host``, ``host:port``, ``[v6]:port``) direct."""
    try:
        parts = urlsplit(f"//{host_port}")
        host, port = (parts.hostname or host_port).lower(), parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        host, port = host_port.strip("[]").lower(), None
    address = _network_of(host) if "/" not in host else None
    for entry in no_proxy:
        entry_host, entry_port = _no_proxy_entry(entry)
        if entry_host == "*":
            return True
        if entry_port is not None and port is not None and entry_port != port:
            continue
        network = _network_of(entry_host)
        if network is not None:
            if address is not None and address.network_address in network:
                return True
            continue
        if entry_host.startswith("*."):
            if host.endswith(entry_host[1:]):
                return True
            continue
        domain = entry_host.lstrip("*").lstrip(".")
        if domain and (host == domain or host.endswith("." + domain)):
            return True
    return False
