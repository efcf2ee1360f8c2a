"""What a user asks of a model: the model reference and the chat request (pydantic models at the edge)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workbench.core.errors import ConfigError


class ModelRef(BaseModel):
    """``provider/model``: ``openai/gpt-4.1-mini``, ``openrouter/anthropic/claude-sonnet-4-5``.

    The provider is everything before the first ``/``; the model is the rest, passed to the provider
    unchanged (so a fake-server scenario such as ``gpt-4o@ttft=200`` travels as is).
    """

    model_config = ConfigDict(frozen=True)

    provider: str
    model: str

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        provider, sep, model = text.strip().partition("/")
        if not sep or not provider or not model:
            raise ConfigError(
                f"'{text}' is not a model reference",
                "write it as provider/model, for example openai/gpt-4.1-mini or ollama/llama3.2",
            )
        return cls(provider=provider.lower(), model=model)

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["user", "assistant"]
    content: str


class Params(BaseModel):
    """Sampling parameters. ``max_tokens`` of ``None`` means "the model's default", resolved before sending."""

    model_config = ConfigDict(frozen=True)

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: tuple[str, ...] = ()
    seed: int | None = None
    json_schema: dict[str, Any] | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    system: str | None = None
    messages: tuple[Message, ...]
    params: Params = Field(default_factory=Params)

    @classmethod
    def from_prompt(cls, prompt: str, *, system: str | None = None, params: Params | None = None) -> ChatRequest:
        return cls(system=system, messages=(Message(role="user", content=prompt),), params=params or Params())

    def with_max_tokens(self, max_tokens: int, *, replace: bool = False) -> ChatRequest:
        """This request with ``max_tokens`` made explicit (kept if already set, unless ``replace``)."""
        if self.params.max_tokens is not None and not replace:
            return self
        return self.model_copy(update={"params": self.params.model_copy(update={"max_tokens": max_tokens})})
