"""The proxy reads a stream for its trace in batches (:data:`workbench.core.capture.recording.BATCH` chunks), yet
every chunk keeps its own arrival time: TTFT is the first content's, and the chunk timings are not the batches'."""

from __future__ import annotations

from tests.test_proxy_idle import body_of, proxied
from workbench.core.capture.recording import BATCH
from workbench.fakeserver.process import FakeServerProcess


def test_a_stream_read_in_batches_keeps_each_chunks_arrival_time_and_all_its_text(
        fake_server: FakeServerProcess) -> None:
    tokens = 3 * BATCH + 5  # three full batches and a part one, read when the call ended
    sent, [record] = proxied(fake_server, f"b@tokens={tokens},tps=400,fixed=1")
    assert record.error is None, record.error
    timing = record.timing
    assert len(timing.chunk_ns) == tokens
    assert timing.first_content_ns == timing.chunk_ns[0] and timing.chunk_ns == sorted(timing.chunk_ns)
    assert len(set(timing.chunk_ns)) > tokens // BATCH + 1  # stamped per chunk as it came, not per batch read
    assert len(record.text_parts) == tokens
    text = "".join(record.text_parts)
    assert text and text.split()[0].encode() in body_of(sent)
