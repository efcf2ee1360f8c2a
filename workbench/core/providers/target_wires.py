"""Which wire format each target speaks, for the checks made before any call (a target's provider's spec is
read, not imported: the registry imports the adapters, which import the checks)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol


class WiredSpec(Protocol):
    """A provider's spec (:class:`~workbench.core.registry.ProviderSpec`), as far as the checks read it."""

    @property
    def wire(self) -> str: ...


def target_wires(targets: Iterable[str], providers: Mapping[str, WiredSpec]) -> Iterator[tuple[str, str]]:
    """Each target with its provider's wire format; a target of an unknown provider is left out (the call
    reports it)."""
    for target in targets:
        spec = providers.get(target.partition("/")[0])
        if spec is not None:
            yield target, spec.wire
