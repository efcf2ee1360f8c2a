"""Raw timestamps of one call, and every metric derived from them.

One definition for the whole product: **TTFT is request sent → first content or reasoning delta**.
"Request sent" is the instant the first byte of the request is written to an open connection, so a
pool wait or a TCP/TLS handshake is not charged to the model; it is kept apart as ``connect_ms``
(handed to the HTTP client → sent). All stamps are ``time.perf_counter_ns()`` values taken on the
network thread when the bytes arrived, never when a UI drew them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

_NS_PER_MS = 1_000_000
MIN_GENERATION_MS = 3.0
"""The shortest generation a rate is measured over. Chunks are stamped when the network read that completed
them returned, and one read often carries several: over a few milliseconds the span says more about reads than
about the model (an instant reply of 5 tokens in 80 µs would read as 50,000 tok/s). A fast provider at
1,000 tok/s still gets a rate from its fourth token on."""


@dataclass(slots=True)
class CallTiming:
    queued_ns: int | None = None
    """The call entered the client-side rate limiter (absent when it had none)."""
    started_ns: int | None = None
    """The call was handed to the HTTP client."""
    sent_ns: int | None = None
    """The request's first byte was written to the connection."""
    headers_ns: int | None = None
    first_event_ns: int | None = None
    first_content_ns: int | None = None
    first_reasoning_ns: int | None = None
    first_text_ns: int | None = None
    end_ns: int | None = None
    chunk_ns: list[int] = field(default_factory=list)
    """Arrival time of every content-bearing (text or reasoning) chunk."""

    def _since_sent(self, stamp: int | None) -> float | None:
        origin = self.sent_ns if self.sent_ns is not None else self.started_ns
        if stamp is None or origin is None:
            return None
        return (stamp - origin) / _NS_PER_MS

    @property
    def queue_ms(self) -> float | None:
        """Time spent waiting in the client-side rate limiter (not part of latency)."""
        if self.queued_ns is None or self.started_ns is None:
            return None
        return (self.started_ns - self.queued_ns) / _NS_PER_MS

    @property
    def connect_ms(self) -> float | None:
        """Handed to the HTTP client → request sent (pool wait, DNS, TCP and TLS handshakes)."""
        if self.started_ns is None or self.sent_ns is None:
            return None
        return (self.sent_ns - self.started_ns) / _NS_PER_MS

    @property
    def ttft_ms(self) -> float | None:
        """Request sent → first content (text or reasoning)."""
        return self._since_sent(self.first_content_ns)

    @property
    def time_to_first_text_ms(self) -> float | None:
        """Request sent → first visible text (excludes reasoning)."""
        return self._since_sent(self.first_text_ns)

    @property
    def ttft_reasoning_ms(self) -> float | None:
        """Request sent → first reasoning (``None`` when none streamed)."""
        return self._since_sent(self.first_reasoning_ns)

    @property
    def ttft_answer_ms(self) -> float | None:
        """Request sent → first answer text, after any reasoning (``None`` when no text came)."""
        return self._since_sent(self.first_text_ns)

    @property
    def time_to_headers_ms(self) -> float | None:
        return self._since_sent(self.headers_ns)

    @property
    def latency_ms(self) -> float | None:
        """Request sent → end of the stream (or of the failure; from the hand-over if never sent)."""
        return self._since_sent(self.end_ns)

    def gaps_ms(self) -> list[float]:
        """Inter-chunk gaps between consecutive content chunks."""
        stamps = self.chunk_ns
        return [(b - a) / _NS_PER_MS for a, b in itertools.pairwise(stamps)]

    def tokens_per_s(self, output_tokens: int) -> float | None:
        """Generation rate after the first token: (output_tokens − 1) / (last chunk − first chunk).

        The first token is excluded because its wait is what TTFT measures. ``None`` (shown as ``–``) when
        fewer than two tokens or chunks arrived, or they arrived within :data:`MIN_GENERATION_MS`: too short a
        span to measure a rate over. The one definition: the faces, the trace log and ``--json`` all use it.
        """
        if output_tokens < 2 or len(self.chunk_ns) < 2:
            return None
        span_ns = self.chunk_ns[-1] - self.chunk_ns[0]
        if span_ns < MIN_GENERATION_MS * _NS_PER_MS:
            return None
        return (output_tokens - 1) * 1e9 / span_ns
