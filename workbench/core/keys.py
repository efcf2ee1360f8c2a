"""API keys: kept in the OS keyring (service ``workbench``), overridden by the environment.

A key is only ever read into memory to build a request header. It is never written anywhere else:
listings show its source and last four characters. Without a usable keyring backend (a headless
Linux box without a Secret Service) the user gets the options, never a silent plaintext fallback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from workbench.core.errors import ConfigError, header_safe
from workbench.core.registry import PROVIDERS, ProviderSpec

SERVICE = "workbench"
_NO_BACKEND_HINT = (
    "start a Secret Service (e.g. gnome-keyring inside a D-Bus session), use the provider's environment "
    "variable instead, or choose an encrypted file backend explicitly: pip install keyrings.alt and set "
    "PYTHON_KEYRING_BACKEND=keyrings.alt.file.EncryptedKeyring"
)


def key_provider_names() -> list[str]:
    """Providers that take a key, one name per key variable (``openai-responses`` shares ``openai``'s)."""
    seen: dict[str, str] = {}
    for name, spec in PROVIDERS.items():
        if spec.key_env and spec.key_env[0] not in seen:
            seen[spec.key_env[0]] = name
    return sorted(seen.values())


class KeyringUnavailable(ConfigError):
    """No usable keyring backend."""


def _key_owner(provider: str) -> str:
    """The keyring entry a provider's key is stored under (aliases share one; configured providers own theirs)."""
    spec = PROVIDERS.get(provider)
    if spec is None:
        return provider
    if not spec.key_env:
        raise ConfigError(f"'{provider}' takes no API key", f"providers with keys: {', '.join(key_provider_names())}")
    return next(n for n in key_provider_names() if PROVIDERS[n].key_env[0] == spec.key_env[0])


def _backend_error(exc: Exception) -> KeyringUnavailable:
    return KeyringUnavailable(f"no usable keyring backend ({type(exc).__name__}: {exc})", _NO_BACKEND_HINT)


def _keyring_call(method: str, *args: str) -> str | None:
    import keyring
    from keyring.backends.fail import Keyring as FailKeyring
    from keyring.errors import KeyringError, PasswordDeleteError

    if isinstance(keyring.get_keyring(), FailKeyring):
        raise _backend_error(RuntimeError("keyring found no backend"))
    try:
        result: str | None = getattr(keyring, method)(*args)
    except PasswordDeleteError:
        raise
    except KeyringError as exc:
        raise _backend_error(exc) from None
    except Exception as exc:  # D-Bus and Secret Service errors are not all KeyringErrors
        if type(exc).__module__.split(".")[0] in ("secretstorage", "jeepney", "dbus"):
            raise _backend_error(exc) from None
        raise
    return result


def set_key(provider: str, value: str) -> None:
    value = value.strip()
    if not value:
        raise ConfigError("the key is empty", "paste the whole key")
    header_safe(value, f"keys set {provider}")
    _keyring_call("set_password", SERVICE, _key_owner(provider), value)
    if stored_key(provider) != value:  # a backend that accepts and keeps nothing (keyring's null backend)
        import keyring

        raise ConfigError(f"the keyring backend ({type(keyring.get_keyring()).__name__}) did not keep the "
                          f"{provider} key", "set a working backend (PYTHON_KEYRING_BACKEND, keyring's config), "
                          f"or export {PROVIDERS[provider].key_env[0] if provider in PROVIDERS else 'the key'}")


def delete_key(provider: str) -> bool:
    """Remove a stored key; ``False`` when none was stored."""
    from keyring.errors import PasswordDeleteError

    try:
        _keyring_call("delete_password", SERVICE, _key_owner(provider))
    except PasswordDeleteError:
        return False
    return True


def stored_key(provider: str) -> str | None:
    return _keyring_call("get_password", SERVICE, _key_owner(provider))


@dataclass(frozen=True, slots=True)
class KeyStatus:
    provider: str
    env_var: str
    source: str
    """``environment``, ``keyring`` or ``none``."""
    masked: str | None
    shadowed: bool = False
    """A keyring key exists but the environment variable overrides it."""


def mask(key: str) -> str:
    """The last four characters of a usable key; nothing of one a header cannot carry (it is refused)."""
    try:
        header_safe(key, "key")
    except ConfigError:
        return "(unusable: a character HTTP cannot carry)"
    return f"…{key[-4:]}" if len(key) >= 12 else "…"


def key_statuses(env: Mapping[str, str]) -> list[KeyStatus]:
    """Where each provider's key comes from, masked. Environment beats keyring; without a usable
    keyring backend only the environment is shown."""
    out = []
    for name in key_provider_names():
        var = PROVIDERS[name].key_env[0]
        from_env = next((env[v] for v in PROVIDERS[name].key_env if env.get(v)), None)
        try:
            stored = stored_key(name)
        except KeyringUnavailable:
            stored = None
        if from_env:
            out.append(KeyStatus(name, var, "environment", mask(from_env), shadowed=stored is not None))
        elif stored:
            out.append(KeyStatus(name, var, "keyring", mask(stored)))
        else:
            out.append(KeyStatus(name, var, "none", None))
    return out


def entry_status(entry: str) -> KeyStatus:
    """A keyring entry that is no provider's key (``team``: the team store's password): stored or not, never a
    character of it."""
    try:
        stored = stored_key(entry)
    except KeyringUnavailable:
        stored = None
    return KeyStatus(entry, "", "keyring" if stored else "none", None)


def key_source(provider: str, env: Mapping[str, str], specs: Mapping[str, ProviderSpec] | None = None) -> str:
    """Where ``provider``'s key comes from, never the key: ``env VAR``, ``set in keyring``, ``missing``, or
    ``not needed`` (local servers, the fake and local providers). ``env`` may hold keyring keys already
    (:func:`with_stored_keys`): a variable holding the stored key is the keyring's."""
    spec = (PROVIDERS if specs is None else specs).get(provider)
    if spec is None:
        return "unknown provider"
    if spec.local or not spec.key_env:
        return "not needed"
    var = next((v for v in spec.key_env if env.get(v)), None)
    try:
        stored = stored_key(provider)
    except KeyringUnavailable:
        stored = None
    if var is not None and env[var] != stored:
        return f"env {var}"
    return "set in keyring" if stored else "missing"


def with_stored_keys(env: Mapping[str, str], providers: list[str],
                     specs: Mapping[str, ProviderSpec] | None = None) -> dict[str, str]:
    """``env`` plus keyring keys for the given providers whose variable is unset (env wins).

    A missing keyring backend only means no stored keys: calls then say which variable to set."""
    merged = dict(env)
    specs = PROVIDERS if specs is None else specs
    for provider in providers:
        spec = specs.get(provider)
        if spec is None or not spec.key_env or any(merged.get(v) for v in spec.key_env):
            continue
        try:
            stored = stored_key(provider)
        except KeyringUnavailable:
            return merged
        if stored:
            merged[spec.key_env[0]] = stored
    return merged
