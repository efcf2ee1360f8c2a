"""Shared pieces of the resilience tests: a clock whose sleeps are instant and recorded."""

from __future__ import annotations

import asyncio
import json
import urllib.request

FAKE_WIRES = ["fake", "fake-responses", "fake-anthropic", "fake-gemini", "fake-ollama"]
"""The fake provider once per wire format."""


class FakeClock:
    """Monotonic time that only moves when something sleeps (or a test advances it)."""

    def __init__(self) -> None:
        self.t = 1_000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        await asyncio.sleep(0)


def server_log(base_url: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"{base_url}/_fake/log") as response:
        entries: list[dict[str, object]] = json.load(response)
        return entries


def requests_for(base_url: str, marker: str) -> int:
    """How many requests the fake server received for models containing ``marker``."""
    return sum(1 for e in server_log(base_url) if marker in str(e["model"]))
