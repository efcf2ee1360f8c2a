"""The editor's live meter: exact incremental token counts per text and encoding, and the debounced cost
estimate per target.

One :class:`~workbench.core.tokens.meter.TokenMeter` per text and encoding is fed each edit's range (a
keystroke re-encodes a few hundred characters); counting a big text from scratch (first load, replay, undo)
runs in a thread worker. The cost range and headroom come from :func:`~workbench.core.tokens.estimate.estimate`,
debounced, computed in an exclusive thread worker (a newer estimate cancels an older one) from the meters'
counts.

The meter owns its state; what it counts comes from its :class:`MeterSource` (the editor screen), which
tells it what changed: :meth:`LiveMeter.edited` (a text area's edits), :meth:`LiveMeter.recount`,
:meth:`LiveMeter.targets_changed`, :meth:`LiveMeter.schedule_estimate`.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any, Protocol

from rich.text import Text
from textual import on, work
from textual.timer import Timer
from textual.widgets import Static
from textual.worker import Worker, WorkerState, get_current_worker

from workbench.core.errors import WorkbenchError
from workbench.core.validate import validated
from workbench.ui.base import workbench_of
from workbench.ui.prompt_text import VARIABLE
from workbench.ui.render import meter_text
from workbench.ui.widgets.editor.prompt_area import EditRange

if TYPE_CHECKING:
    from workbench.core.attachments import Attachment
    from workbench.core.request import ChatRequest
    from workbench.core.tokens.estimate import Estimate
    from workbench.core.tokens.meter import TokenMeter

ESTIMATE_DEBOUNCE_S = 0.25
Meters = dict[tuple[str, str], "TokenMeter"]


class MeterSource(Protocol):
    """What the meter counts: the texts (system first, then the turns), as typed and as sent, the last user turn's
    attachments, and the targets."""

    attachments: list[Attachment]

    def fields(self) -> list[str]: ...

    def text_of(self, field: str) -> str: ...

    def meter_text(self, field: str) -> str: ...

    def messages(self) -> list[tuple[str, str]]: ...

    def targets(self) -> list[str]: ...

    def with_cache(self, request: ChatRequest) -> ChatRequest: ...

    def max_tokens(self) -> int | None: ...

    def meter_tools(self) -> tuple[dict[str, Any], ...]: ...


class LiveMeter(Static):
    """Tokens in (live, per target's encoding), USD in → in+max and headroom (debounced)."""

    def __init__(self, source: MeterSource, *, id: str | None = None) -> None:
        super().__init__(Text("counting…", style="dim"), id=id)
        self.source = source
        self.ready = False
        """Set after the editor's first paint: until then no tokenizer work (the first recount covers it)."""
        self.meters: Meters = {}
        """(field, encoding) → meter; built in a worker, then edited in place on the UI thread."""
        self.estimates: dict[str, Estimate] = {}
        self.templated: set[str] = set()
        """Fields whose meters count substituted text: edits cannot be applied incrementally there."""
        self._estimate_timer: Timer | None = None
        self._shape = (0, 0)
        self._counting = False
        self._again = False

    def encodings(self) -> dict[str, tuple[str, bool]]:
        """target → (encoding name, exact?) — ``encoding_name_for`` is a cheap lookup (no tiktoken load)."""
        from workbench.core.tokens.encodings import encoding_name_for

        out = {}
        for target in self.source.targets():
            provider, _, model = target.partition("/")
            out[target] = encoding_name_for(provider.lower(), model)
        return out

    # -- what changed ----------------------------------------------------------------------------------

    def edited(self, field: str, edits: list[EditRange], length: int, placeholder: bool) -> None:
        """Apply a text area's edits to its meters and redraw (a recount when they cannot apply: substituted
        text, a placeholder typed, or a text replaced as a whole)."""
        if not self.ready:
            return
        if self._counting:
            self._again = True
            return
        if field in self.templated or placeholder:
            self.recount()  # the meter counts substituted text: edits' offsets do not apply
            return
        for (name, _), meter in self.meters.items():
            if name != field:
                continue
            try:
                for start, end, text in edits:
                    meter.edit(start, end, text)
            except ValueError:
                pass
            if len(meter) != length:  # load_text, undo/redo: count again in a worker
                self.recount()
                return
        self.render_meter()
        self.schedule_estimate()

    def targets_changed(self) -> None:
        if not self.ready:
            return
        if {enc for enc, _ in self.encodings().values()} - {enc for _, enc in self.meters}:
            self.recount()
        self.render_meter()
        self.schedule_estimate()

    def fields_changed(self) -> None:
        """Turns were added, removed or moved: drop the meters of texts gone, count again."""
        fields = set(self.source.fields())
        self.meters = {key: m for key, m in self.meters.items() if key[0] in fields}
        if self.ready:
            self.recount()

    # -- counting --------------------------------------------------------------------------------------

    def recount(self) -> None:
        """Count every text from scratch, for every encoding in use, in a thread worker."""
        if self._counting:
            self._again = True
            return
        self._counting = True
        source = self.source
        fields = source.fields()
        texts = {field: source.meter_text(field) for field in fields}
        self.templated = {field for field in fields if VARIABLE.search(source.text_of(field))}
        encodings = {enc for enc, _ in self.encodings().values()} or {"o200k_base"}
        self._count(texts, encodings)

    @work(thread=True, exclusive=True, exit_on_error=False, group="count", name="count-tokens")
    def _count(self, texts: dict[str, str], encodings: set[str]) -> Meters:
        from workbench.core.tokens.encodings import get_encoding
        from workbench.core.tokens.meter import TokenMeter

        return {(field, enc): TokenMeter(get_encoding(enc), text) for field, text in texts.items() for enc in encodings}

    @on(Worker.StateChanged)
    def _worker_done(self, event: Worker.StateChanged) -> None:
        worker, counting = event.worker, event.worker.group == "count"
        if event.state is WorkerState.ERROR:
            self._counting = self._counting and not counting
            if worker.error is not None:
                workbench_of(self).report(worker.error, "token count failed: " if counting else "no cost estimate: ")
        elif event.state is WorkerState.SUCCESS and counting and worker.result is not None:
            self._counted(worker.result)

    def _counted(self, meters: Meters) -> None:
        self._counting = False
        source = self.source
        current = {field: source.meter_text(field) for field in source.fields()}
        if (self._again or set(current) != {f for f, _ in meters}
                or any(m.text != current[f] for (f, _), m in meters.items())):
            self._again = False
            self.meters = meters
            self.recount()
            return
        self.meters = meters
        gc.freeze()  # long-lived: a full collection no longer walks the encodings and meters (pauses of 100+ ms)
        self.render_meter()
        self.schedule_estimate()

    def message_tokens(self, encoding: str) -> list[int] | None:
        """Each message's own token count from the live meters, the system prompt first when there is one
        (``None`` while counting)."""
        fields = self.source.fields()
        system = self.meters.get((fields[0], encoding))
        turns = [self.meters.get((turn, encoding)) for turn in fields[1:]]
        if system is None or any(t is None for t in turns):
            return None
        counts = [t.count for t in turns if t is not None]
        return [system.count, *counts] if len(system) else counts

    def input_tokens(self, encoding: str) -> int | None:
        """Input tokens as ``count_chat`` counts them, from the live meters (``None`` while counting)."""
        from workbench.core.tokens.encodings import chat_tokens

        counts = self.message_tokens(encoding)
        return None if counts is None else chat_tokens(counts)

    def rows(self) -> list[dict[str, object]]:
        """One row per target: tokens (live), and the last estimate's cost range and headroom."""
        attached = self.attached_tokens
        rows: list[dict[str, object]] = []
        for target, (encoding, exact) in self.encodings().items():
            tokens, extra = self.input_tokens(encoding), attached(target)
            rows.append({"target": target, "tokens": None if tokens is None else tokens + extra,
                         "exact": exact and not extra, "estimate": self.estimates.get(target)})
        return rows

    def attached_tokens(self, target: str) -> int:
        """The tokens of the last user turn's attachments on ``target``, by its provider's rule (never exact)."""
        if not self.source.attachments:
            return 0
        from workbench.core.request import Message
        from workbench.core.tokens.estimate import attached_tokens

        return attached_tokens(Message(role="user", content="", attachments=tuple(self.source.attachments)), target)

    def render_meter(self) -> None:
        """Redraw; a layout pass only when the meter's shape (lines, widest line) changed."""
        text = meter_text(self.rows())
        lines = text.plain.split("\n")
        shape = (len(lines), max(map(len, lines)))
        self.update(text, layout=shape != self._shape)
        self._shape = shape

    # -- the estimate ----------------------------------------------------------------------------------

    def schedule_estimate(self) -> None:
        if self._estimate_timer is not None:
            self._estimate_timer.stop()
        self._estimate_timer = self.set_timer(ESTIMATE_DEBOUNCE_S, self._estimate_now)

    def _estimate_now(self) -> None:
        try:
            request = self._request()
        except Exception:
            return
        # The meters' counts, so the worker prices without tokenizing the whole text again.
        counts = {target: self.message_tokens(encoding) for target, (encoding, _) in self.encodings().items()}
        self._estimate(request, self.source.targets(), counts)

    @work(thread=True, exclusive=True, exit_on_error=False, group="estimate", name="estimate")
    def _estimate(self, request: ChatRequest, targets: list[str], counts: dict[str, list[int] | None]) -> None:
        from workbench.core.tokens.estimate import estimate

        prices = workbench_of(self).settings().prices
        results: dict[str, Estimate] = {}
        for target in targets:
            try:
                results[target] = estimate(request, target, prices, message_tokens=counts.get(target))
            except WorkbenchError:
                continue
        if not get_current_worker().is_cancelled:  # a newer estimate replaced this one
            self.app.call_from_thread(self._estimated, results)

    def _request(self) -> ChatRequest:
        from workbench.core.request import ChatRequest, Message, Params

        source = self.source
        try:
            max_tokens = source.max_tokens()
        except ValueError:
            max_tokens = None
        from workbench.core.attachments import with_attachments

        turns = tuple(validated(Message, {"role": r, "content": t}) for r, t in source.messages())
        request = with_attachments(ChatRequest(system=source.meter_text("system") or None,
                                               params=Params(max_tokens=max_tokens, tools=source.meter_tools()),
                                               messages=turns),
                                   source.attachments)
        try:
            return source.with_cache(request)  # the warm estimate of Anthropic targets
        except WorkbenchError:  # a breakpoint being typed, or one that names nothing: priced cold meanwhile
            return request

    def _estimated(self, results: dict[str, Estimate]) -> None:
        self.estimates = results
        self.render_meter()
