"""Network settings: how ``[network]``, provider tables and the environment resolve, and what ``config show``
prints of them (in a subprocess, as a user runs it): sources, no proxy password, one line per bad value."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Certs
from workbench.core.errors import ConfigError
from workbench.core.network import (
    DEFAULT_CONNECT_RETRIES,
    Network,
    redact_url,
    resolve_network,
    uses_tls,
)
from workbench.core.network_options import NetworkOptions, NetworkSection

SECRET = "s3cret"
PROXY_WITH_PASSWORD = f"http://user:{SECRET}@127.0.0.1:1"


@pytest.fixture
def ca_file(certs: Certs) -> Path:
    return certs.ca


# -- resolution -------------------------------------------------------------------------------------------


def sources(network: Network) -> dict[str, str]:
    return dict(network.sources)


def test_defaults_without_anything_set() -> None:
    network = resolve_network(None, env={})
    assert network.proxy is None and network.scheme_proxies == () and network.routes() == []
    assert network.verify and not network.http2 and network.connect_retries == DEFAULT_CONNECT_RETRIES
    assert network.warnings() == []
    assert {row[0]: row[2] for row in network.describe()}["proxy"] == "default"


def test_the_environment_names_its_variables() -> None:
    network = resolve_network(None, env={"HTTPS_PROXY": "proxy.corp:3128", "ALL_PROXY": "socks5h://s:1080",
                                         "NO_PROXY": "localhost, .corp", "SSL_CERT_DIR": "/"})
    assert network.scheme_proxies == (("https", "http://proxy.corp:3128"), ("all", "socks5h://s:1080"))
    assert sources(network) == {"proxy": "HTTPS_PROXY, ALL_PROXY", "no_proxy": "NO_PROXY", "ca_bundle": "SSL_CERT_DIR"}
    assert network.no_proxy == ("localhost", ".corp") and network.ca_dir == "/"
    assert network.proxy_for("https", "api.openai.com") == "http://proxy.corp:3128"
    assert network.proxy_for("http", "api.openai.com") == "socks5h://s:1080"  # ALL_PROXY covers the rest
    assert network.proxy_for("https", "git.corp") is None


def test_lower_case_variables_win_as_in_curl() -> None:
    network = resolve_network(None, env={"http_proxy": "http://lower:1", "HTTP_PROXY": "http://upper:1"})
    assert network.scheme_proxies == (("http", "http://lower:1"),) and sources(network)["proxy"] == "http_proxy"


def test_the_config_beats_the_environment_and_a_provider_table_beats_both(tmp_path: Path) -> None:
    env = {"HTTPS_PROXY": "http://env:1", "NO_PROXY": "example.com"}
    section = NetworkSection(proxy="http://config:2", http2=True,
                             providers={"fake": NetworkOptions(proxy="socks5://provider:3", http2=False)})
    network = resolve_network(section, env, base_urls={"fake": "http://127.0.0.1:9/v1"}, source="w.toml [network]")
    assert network.proxy == "http://config:2" and network.http2
    assert sources(network)["proxy"] == "w.toml [network]" and sources(network)["no_proxy"] == "NO_PROXY"
    [(origin, fake)] = network.per_origin
    assert origin == "http://127.0.0.1:9"
    assert fake.proxy == "socks5://provider:3" and not fake.http2 and fake.no_proxy == ("example.com",)
    assert sources(fake)["proxy"] == "[network.providers.fake]"
    rows = {name: (value, source) for name, value, source in network.describe()}
    assert rows["http://127.0.0.1:9 proxy"] == ("socks5://provider:3", "[network.providers.fake]")
    assert "http://127.0.0.1:9 no_proxy" not in rows  # only what the provider's table sets


def test_proxy_none_wins_over_the_environment() -> None:
    network = resolve_network(NetworkSection(proxy="none"), env={"ALL_PROXY": "socks5://s:1"})
    assert network.proxy_for("https", "api.openai.com") is None
    assert [(r.pattern, r.proxy) for r in network.routes()] == [("all://", None)]
    assert {row[0]: row[1] for row in network.describe()}["proxy"] == "none (direct)"


@pytest.mark.parametrize(("no_proxy", "host", "bypassed"), [
    ("example.com", "example.com", True),
    ("example.com", "api.example.com", True),
    ("example.com", "badexample.com", False),
    (".example.com", "example.com", True),
    ("*.example.com", "api.example.com", True),
    ("*.example.com", "example.com", False),
    ("10.0.0.0/8", "10.1.2.3", True),
    ("10.0.0.0/8", "11.0.0.1", False),
    ("fd00::/8", "[fd12::1]:443", True),
    ("127.0.0.1", "127.0.0.1:8080", True),
    ("::1", "[::1]:8080", True),
    ("[::1]:8080", "[::1]:8080", True),
    ("[::1]:8080", "[::1]:8081", False),
    ("internal:8080", "internal:8080", True),
    ("internal:8080", "internal", False),  # port 443 (https)
    ("*", "anything.at.all", True),
])
def test_no_proxy_entries(no_proxy: str, host: str, bypassed: bool) -> None:
    network = resolve_network(None, env={"HTTPS_PROXY": "http://p:1", "NO_PROXY": no_proxy})
    assert (network.proxy_for("https", host) is None) is bypassed


def test_no_proxy_becomes_httpx2_mount_patterns() -> None:
    from workbench.core.httpclient import new_client

    network = resolve_network(None, env={"HTTP_PROXY": "http://p:1",
                                         "NO_PROXY": "10.0.0.0/8,fd00::/8,[::1]:8080,.corp,localhost,h:81"})
    assert [r.pattern for r in network.routes() if r.proxy is None] == [
        "all://10.0.0.0/8", "all://[fd00::]/8", "all://[::1]:8080", "all://*corp", "all://localhost", "all://*h:81"]
    new_client(network)  # httpx2 accepts every pattern


def test_a_proxy_password_is_never_shown() -> None:
    assert redact_url(PROXY_WITH_PASSWORD) == "http://user:***@127.0.0.1:1"
    assert redact_url("http://user@host:1") == "http://user@host:1"
    assert SECRET not in redact_url(f"http://u:{SECRET}@[::1")  # not even from a URL that does not parse
    section = NetworkSection(proxy=PROXY_WITH_PASSWORD, providers={"x": NetworkOptions(proxy=PROXY_WITH_PASSWORD)})
    assert SECRET not in json.dumps(section.model_dump(mode="json"))
    network = resolve_network(section, env={"HTTPS_PROXY": PROXY_WITH_PASSWORD}, base_urls={"x": "https://x.test"})
    assert network.proxy == PROXY_WITH_PASSWORD  # the client still gets it
    assert SECRET not in repr(network.describe())


def test_verify_false_is_warned_about_wherever_it_is_set() -> None:
    network = resolve_network(NetworkSection(providers={"fake": NetworkOptions(verify=False)}), env={},
                              base_urls={"fake": "https://127.0.0.1:9"})
    [warning] = network.warnings()
    assert "not verified for https://127.0.0.1:9" in warning
    assert len(resolve_network(NetworkSection(verify=False), env={}).warnings()) == 1


@pytest.mark.parametrize(("section", "env", "names"), [
    (NetworkSection(proxy="ftp://proxy:21"), {}, "[network] proxy: not a proxy URL"),
    (NetworkSection(proxy="http://[::1"), {}, "[network] proxy: not a proxy URL"),
    (NetworkSection(proxy="http://host:99999"), {}, "[network] proxy: not a proxy URL"),
    (NetworkSection(proxy="http://host:port"), {}, "[network] proxy: not a proxy URL"),
    (None, {"HTTPS_PROXY": "ftp://proxy:21"}, "HTTPS_PROXY: not a proxy URL"),
    (NetworkSection(ca_bundle="/nonexistent/ca.pem"), {}, "[network] ca_bundle: no such file"),
    (None, {"SSL_CERT_FILE": "/nonexistent/ca.pem"}, "SSL_CERT_FILE: no such file"),
    (NetworkSection(client_key=__file__), {}, "[network] client_key: set client_cert too"),
    (NetworkSection(client_cert="/nonexistent/client.pem"), {}, "[network] client_cert: no such file"),
    (NetworkSection(providers={"nope": NetworkOptions(http2=True)}), {}, "[network.providers.nope]: unknown"),
])
def test_a_bad_value_names_its_setting(section: NetworkSection | None, env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_network(section, env)
    assert str(caught.value).startswith(names)
    assert caught.value.hint


def test_environment_values_the_config_overrides_are_not_checked(ca_file: Path) -> None:
    env = {"HTTPS_PROXY": "ftp://stale:21", "SSL_CERT_FILE": "/nonexistent/ca.pem"}
    network = resolve_network(NetworkSection(proxy="http://p:1", ca_bundle=str(ca_file)), env)
    assert network.proxy_for("https", "x.test") == "http://p:1" and network.ca_bundle == str(ca_file)
    with pytest.raises(ConfigError, match=r"^SSL_CERT_FILE: no such file"):  # in force: checked
        resolve_network(NetworkSection(proxy="http://p:1"), env)


def test_tls_files_are_loaded_when_resolved(tmp_path: Path, ca_file: Path) -> None:
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"^\[network\] ca_bundle: cannot load .*notes\.txt"):
        resolve_network(NetworkSection(ca_bundle=str(not_pem)), env={})
    with pytest.raises(ConfigError, match=r"^REQUESTS_CA_BUNDLE: cannot load"):
        resolve_network(None, env={"REQUESTS_CA_BUNDLE": str(not_pem)})
    with pytest.raises(ConfigError, match=r"^\[network\] client_cert: cannot load .*: not a PEM certificate"):
        resolve_network(NetworkSection(client_cert=str(ca_file)), env={})  # a certificate without its key
    assert resolve_network(NetworkSection(ca_bundle=str(ca_file)), env={}).ca_bundle == str(ca_file)


# -- workbench config show ------------------------------------------------------------------------------

NETWORK_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "ssl_cert_file", "ssl_cert_dir",
                     "requests_ca_bundle"}


def workbench(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
              ) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k.lower() not in NETWORK_VARIABLES
            and not k.endswith(("_API_KEY", "_BASE_URL")) and k != "OLLAMA_HOST"}
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True,
                          env={**base, **(env or {})}, timeout=60, cwd=cwd)


def show(config: Path, env: dict[str, str]) -> tuple[dict[str, tuple[str, str]], str, str]:
    """``config show`` both ways: (rows of the JSON form, the JSON text, the text form)."""
    as_json = workbench("config", "show", "--config", str(config), "--json", env=env, cwd=config.parent)
    as_text = workbench("config", "show", "--config", str(config), env=env, cwd=config.parent)
    assert as_json.returncode == 0 and as_text.returncode == 0, as_json.stderr + as_text.stderr
    rows = {row["setting"]: (row["value"], row["source"]) for row in json.loads(as_json.stdout)["network"]}
    for name, (value, source) in rows.items():
        assert f"  {name} = {value}    # {source}" in as_text.stdout
    return rows, as_json.stdout + as_json.stderr, as_text.stdout + as_text.stderr


def test_config_show_names_the_environment_as_the_source(tmp_path: Path, ca_file: Path) -> None:
    config = tmp_path / "workbench.toml"
    config.write_text("[network]\nhttp2 = true\nconnect_retries = 3\n")
    env = {"HTTPS_PROXY": PROXY_WITH_PASSWORD, "no_proxy": "localhost,10.0.0.0/8", "SSL_CERT_FILE": str(ca_file)}
    rows, json_out, text_out = show(config, env)
    assert rows["proxy"] == ("https: http://user:***@127.0.0.1:1", "HTTPS_PROXY")
    assert rows["no_proxy"] == ("localhost,10.0.0.0/8", "no_proxy")
    assert rows["ca_bundle"] == (str(ca_file), "SSL_CERT_FILE")
    assert rows["http2"] == ("true", f"{config} [network]")
    assert rows["connect_retries"] == ("3", f"{config} [network]")
    assert rows["verify"] == ("true", "default") and rows["client_cert"] == ("-", "default")
    assert SECRET not in json_out and SECRET not in text_out


def test_config_show_names_the_file_and_hides_every_password(tmp_path: Path, ca_file: Path) -> None:
    config = tmp_path / "workbench.toml"
    config.write_text(f'[network]\nproxy = "{PROXY_WITH_PASSWORD}"\nca_bundle = "{ca_file}"\nno_proxy = ".corp"\n'
                      f'[network.providers.fake]\nproxy = "socks5h://u:{SECRET}@127.0.0.1:2"\nverify = false\n')
    env = {"HTTPS_PROXY": f"http://env:{SECRET}@127.0.0.1:3", "SSL_CERT_FILE": "/nonexistent.pem",
           "WORKBENCH_FAKE_URL": "http://127.0.0.1:9"}
    rows, json_out, text_out = show(config, env)
    assert rows["proxy"] == ("http://user:***@127.0.0.1:1", f"{config} [network]")
    assert rows["ca_bundle"] == (str(ca_file), f"{config} [network]")  # beats SSL_CERT_FILE (not even checked)
    assert rows["no_proxy"] == (".corp", f"{config} [network]")
    assert rows["http://127.0.0.1:9 proxy"] == ("socks5h://u:***@127.0.0.1:2", "[network.providers.fake]")
    assert rows["http://127.0.0.1:9 verify"] == ("false", "[network.providers.fake]")
    assert SECRET not in json_out and SECRET not in text_out  # nor in the dump of the configuration itself
    assert "http://user:***@127.0.0.1:1" in text_out.split("effective network settings:")[0]


@pytest.mark.parametrize(("table", "env", "names"), [
    ('proxy = "ftp://proxy.corp:21"', {}, "[network] proxy: not a proxy URL: ftp://proxy.corp:21"),
    ('proxy = "http://user:s3cret@[::1"', {}, "[network] proxy: not a proxy URL: http://user:***@[::1"),
    ('ca_bundle = "/nonexistent/ca.pem"', {}, "[network] ca_bundle: no such file: /nonexistent/ca.pem"),
    ('ca_bundle = "workbench.toml"', {}, "[network] ca_bundle: cannot load"),
    ("connect_retries = 99", {}, "network.connect_retries"),
    ("", {"ALL_PROXY": "ftp://proxy.corp:21"}, "ALL_PROXY: not a proxy URL"),
    ("", {"SSL_CERT_FILE": "/nonexistent/ca.pem"}, "SSL_CERT_FILE: no such file"),
])
def test_a_bad_network_value_is_one_line_and_exit_2(table: str, env: dict[str, str], names: str,
                                                   tmp_path: Path) -> None:
    config = tmp_path / "workbench.toml"
    config.write_text(f"[network]\n{table}\n")
    forms = [("config", "show", "--config", str(config))]
    if "ftp" in table:
        forms.append(("config", "show", "--config", str(config), "--json"))
    for args in forms:
        result = workbench(*args, env=env, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""
        error, *rest = result.stderr.splitlines()
        assert error.startswith("workbench: ") and names in error, error
        assert all(line.startswith("  hint: ") for line in rest) and len(rest) <= 1, result.stderr
        assert SECRET not in result.stderr


def test_run_checks_the_ca_bundle_once_its_request_is_sent_and_still_exits_2(tmp_path: Path,
                                                                             fake_env: dict[str, str]) -> None:
    """`workbench run` resolves the network settings without loading the CA bundle (that waits until the race
    is sent); when a target is called over TLS, a bundle that does not load is still one line naming the setting
    and exit 2, and every call is traced."""
    (tmp_path / "workbench.toml").write_text('[network]\nca_bundle = "workbench.toml"\n'
                                             '[providers.tls]\nwire = "openai_chat"\nbase_url = "https://127.0.0.1:9/v1"\n')
    traces = tmp_path / "traces.db"
    env = {**fake_env, "WORKBENCH_TRACES": str(traces)}
    result = workbench("run", "hi", "-m", "fake/x", "-m", "tls/m", "--json", env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    error, *rest = result.stderr.splitlines()
    assert error.startswith("workbench: ") and "[network] ca_bundle: cannot load" in error, result.stderr
    assert all(line.startswith("  hint: ") for line in rest), result.stderr
    with sqlite3.connect(traces) as conn:
        # The fake server is an http:// origin, which never loads the bundle: its call is made, and traced.
        assert sorted(conn.execute("SELECT model, status FROM calls")) == [("m", "error"), ("x", "ok")]


def test_a_race_without_tls_never_loads_the_ca_bundle(tmp_path: Path, fake_env: dict[str, str]) -> None:
    """Only a TLS connection reads the CA bundle: a race of ``http://`` origins (a local server, the fake one) runs
    whatever the bundle holds."""
    (tmp_path / "workbench.toml").write_text('[network]\nca_bundle = "workbench.toml"\n')
    env = {**fake_env, "WORKBENCH_TRACES": str(tmp_path / "t.db")}
    result = workbench("run", "hi", "-m", "fake/x", "--json", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "ok"


def test_tls_is_used_by_https_origins_and_https_proxies_only() -> None:
    plain = Network()
    assert not uses_tls(plain, ["http://127.0.0.1:8080/v1", "http://localhost:11434"])
    assert uses_tls(plain, ["http://127.0.0.1:8080/v1", "https://api.openai.com/v1"])
    assert uses_tls(plain, [None])  # a target that does not resolve: checked, its call says why
    assert uses_tls(Network(proxy="https://proxy.corp:3128"), ["http://10.0.0.2/v1"])
    assert not uses_tls(Network(proxy="http://proxy.corp:3128"), ["http://10.0.0.2/v1"])
