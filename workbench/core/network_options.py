"""The ``[network]`` table of ``workbench.toml`` as read and validated (pydantic: a configuration edge);
:func:`workbench.core.network.resolve_network` turns it, with the environment, into a
:class:`~workbench.core.network.Network`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from workbench.core.proxy_url import redact_url


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

    @field_serializer("proxy")
    def _redacted(self, proxy: str | None) -> str | None:
        """Dumped (``config show`` prints the configuration) without the proxy's password."""
        return None if proxy is None else redact_url(proxy)


class NetworkSection(NetworkOptions):
    providers: dict[str, NetworkOptions] = {}
