"""Input tokens of attached images and PDFs, by each provider's published rule (pure arithmetic, no I/O).

- OpenAI (also Ollama and OpenAI-compatible servers, as an approximation): with ``detail`` high (what
  ``auto`` is counted as) the image is scaled to fit 2048×2048, then its shortest side to 768 px; each 512 px
  tile costs the model's tile tokens plus its base tokens once (gpt-4o, gpt-4.1, gpt-4.5, gpt-5: 85 + 170 a
  tile; gpt-4o-mini: 2833 + 5667; o1, o3: 75 + 150); ``low`` is the base alone. gpt-4.1-mini/nano, gpt-5-mini/
  nano and o4-mini count 32 px patches (at most 1536, the image scaled down to fit) times a multiplier.
- Anthropic: width × height / 750, after scaling to fit a 1568 px long edge and ~1.2 megapixels (1600 tokens).
- Gemini: 258 when both sides are at most 384 px, else 258 per 768×768 tile.
- PDFs: a rough figure per page (:data:`PDF_PAGE_TOKENS`; the page count itself is rough too).
"""

from __future__ import annotations

import math
from typing import Literal

Family = Literal["openai", "anthropic", "gemini"]

_PATCH_MULTIPLIERS = (("gpt-4.1-mini", 1.62), ("gpt-4.1-nano", 2.46), ("gpt-5-mini", 1.62), ("gpt-5-nano", 2.46),
                      ("o4-mini", 1.72))
_TILE_TOKENS = (("gpt-4o-mini", 2833, 5667), ("o1", 75, 150), ("o3", 75, 150))
"""(model prefix, base tokens, tokens per tile) where they differ from the gpt-4o family's 85 and 170."""
_MAX_PATCHES = 1536

PDF_PAGE_TOKENS: dict[Family, int] = {"openai": 1500, "anthropic": 1500, "gemini": 258}
"""A page's tokens, rough: Anthropic and OpenAI send each page's text and an image of it (1500 to 3000 tokens a
page, by Anthropic's guide); Gemini counts a page as one image (258)."""


def family_of(wire: str, model: str) -> Family:
    """Whose rule counts an image sent over ``wire`` to ``model`` (a Claude or Gemini model behind an
    OpenAI-compatible router is counted by its maker's rule)."""
    name = model.rsplit("/", 1)[-1].lower()
    if wire == "anthropic" or name.startswith("claude"):
        return "anthropic"
    if wire == "gemini" or name.startswith("gemini"):
        return "gemini"
    return "openai"


def image_tokens(family: Family, model: str, width: int, height: int, detail: str = "high") -> int:
    if family == "anthropic":
        return anthropic_image_tokens(width, height)
    if family == "gemini":
        return gemini_image_tokens(width, height)
    return openai_image_tokens(model, width, height, detail)


def openai_image_tokens(model: str, width: int, height: int, detail: str = "high") -> int:
    name = model.rsplit("/", 1)[-1].split("@", 1)[0].lower()
    for prefix, multiplier in _PATCH_MULTIPLIERS:
        if name.startswith(prefix):
            return math.ceil(_patches(width, height) * multiplier)
    base, tile = next(((b, t) for prefix, b, t in _TILE_TOKENS if name.startswith(prefix)), (85, 170))
    if detail == "low":
        return base
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        scale = 2048 / max(w, h)
        w, h = w * scale, h * scale
    if min(w, h) > 768:
        scale = 768 / min(w, h)
        w, h = w * scale, h * scale
    return base + tile * math.ceil(w / 512) * math.ceil(h / 512)


def _patches(width: int, height: int) -> int:
    """32 px patches of the image, scaled down (whole patches kept) when there would be more than 1536."""
    if math.ceil(width / 32) * math.ceil(height / 32) <= _MAX_PATCHES:
        return math.ceil(width / 32) * math.ceil(height / 32)
    shrink = math.sqrt(32 * 32 * _MAX_PATCHES / (width * height))
    shrink *= min(math.floor(width * shrink / 32) / (width * shrink / 32),
                  math.floor(height * shrink / 32) / (height * shrink / 32))
    w, h = int(width * shrink), int(height * shrink)
    return min(_MAX_PATCHES, math.ceil(w / 32) * math.ceil(h / 32))


def anthropic_image_tokens(width: int, height: int) -> int:
    scale = min(1.0, 1568 / max(width, height), math.sqrt(1600 * 750 / (width * height)))
    w, h = int(width * scale), int(height * scale)
    return math.ceil(w * h / 750)


def gemini_image_tokens(width: int, height: int) -> int:
    if width <= 384 and height <= 384:
        return 258
    return 258 * math.ceil(width / 768) * math.ceil(height / 768)


def pdf_tokens(family: Family, pages: int) -> int:
    return PDF_PAGE_TOKENS[family] * pages
