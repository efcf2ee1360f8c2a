"""Local servers the TUI offers as targets (the editor's preselection, the keys screen's models table)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.core.registry import ProviderSpec


def discover_targets(env: Mapping[str, str], providers: Mapping[str, ProviderSpec]) -> list[str]:
    """Targets served by local servers that answer within the discovery's time bound (none on timeout)."""
    from workbench.core.discovery import discover

    return list(discover(env, providers))
