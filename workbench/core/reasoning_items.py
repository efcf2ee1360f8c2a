"""A reply's reasoning as the provider wants it back when the conversation goes on (a tool loop): opaque, signed or
encrypted items that only the provider and wire that produced them accept.

- Anthropic ``thinking`` blocks (their text and ``signature``) and ``redacted_thinking`` blocks (``data``), in
  their place among the ``tool_use`` blocks (interleaved thinking: a block after the k-th call has
  ``before_call`` k).
- OpenAI Responses ``reasoning`` items (``id``, ``summary``, ``encrypted_content``: asked for with
  ``include: ["reasoning.encrypted_content"]``, since the workbench sends ``store: false``).
- Gemini's ``thoughtSignature`` rides on each tool call (:class:`~workbench.core.tool_turns.TurnToolCall`).

Each is sent back only to the wire it came from, on the same provider (:func:`origin`): another API would refuse
a signature it did not make (400), so a turn continued elsewhere (a mixed race) goes without them
(:meth:`~workbench.core.request.ChatRequest.for_origin`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from workbench.core.bounds import check

ReasoningKind = Literal["thinking", "redacted_thinking", "reasoning"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReasoningItem:
    """One reasoning item of an assistant turn, kept to be sent back as the provider produced it."""

    __pydantic_config__: ClassVar[dict[str, str]] = {"extra": "forbid"}

    kind: ReasoningKind
    """``thinking`` / ``redacted_thinking`` (Anthropic), ``reasoning`` (Responses)."""
    text: str = ""
    """A thinking block's text, as streamed (its signature signs it)."""
    summary: tuple[str, ...] | None = None
    """A Responses reasoning item's summary texts, as its ``output_item.done`` gave them."""
    id: str | None = None
    """A Responses reasoning item's id (``rs_…``)."""
    signature: str | None = None
    """A thinking block's signature."""
    data: str | None = None
    """A ``redacted_thinking`` block's ``data``, a Responses item's ``encrypted_content``."""
    before_call: int = 0
    """How many of the turn's tool calls came before it."""

    def __post_init__(self) -> None:
        if self.summary is not None and not isinstance(self.summary, tuple):
            object.__setattr__(self, "summary", tuple(self.summary))
        check("before_call", self.before_call, ge=0)

    @property
    def sendable(self) -> bool:
        """Can it go back? A thinking block needs its signature, a redacted one its data; a Responses item its
        encrypted content (the workbench stores nothing on OpenAI's side, so an id alone names nothing)."""
        return bool(self.signature if self.kind == "thinking" else self.data)


def origin(provider: str, wire: str) -> str:
    """Who produced a reply's opaque parts: the provider's name and its wire (``anthropic:anthropic``)."""
    return f"{provider}:{wire}"


ANTHROPIC_KINDS = frozenset({"thinking", "redacted_thinking"})
RESPONSES_KINDS = frozenset({"reasoning"})


def placed(items: tuple[ReasoningItem, ...], calls: int, kinds: frozenset[str]) -> list[list[ReasoningItem]]:
    """The sendable items of ``kinds`` (the wire's own: a turn written by hand may hold another's) in ``calls + 1``
    slots: slot k holds those that came after the k-th call (slot 0: before any call), so a wire lays them out
    between its tool-call blocks in the order they came."""
    slots: list[list[ReasoningItem]] = [[] for _ in range(calls + 1)]
    for item in items:
        if item.sendable and item.kind in kinds:
            slots[min(item.before_call, calls)].append(item)
    return slots
