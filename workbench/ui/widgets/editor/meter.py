"""The editor's live meter: exact incremental token counts per text area and encoding, and the debounced
cost estimate per target.

One :class:`~workbench.core.tokens.meter.TokenMeter` per text area and encoding is fed each edit's range (a
keystroke re-encodes a few hundred characters); counting a big text from scratch (first load, replay,
undo) runs in a thread worker. The cost range and headroom come from
:func:`~workbench.core.tokens.estimate.estimate`, debounced, computed in a thread worker from the meters' counts.

:class:`LiveMeter` is mixed into the editor screen, which provides the texts and targets it counts:
``fields``, ``text_of``, ``meter_text``, ``messages``, ``targets``, ``max_tokens``, ``turn_ids``, ``ready``
and the variables panel's state (``variable_values``, ``variable_inputs``, ``_templated``).
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any

from textual.containers import Vertical
from textual.widgets import Input, Static, TextArea

from workbench.core.errors import WorkbenchError
from workbench.ui.prompt_text import VARIABLE, MeteredTextArea, variable_names
from workbench.ui.render import meter_text

if TYPE_CHECKING:
    from workbench.core.request import ChatRequest
    from workbench.core.tokens.estimate import Estimate
    from workbench.core.tokens.meter import TokenMeter

ESTIMATE_DEBOUNCE_S = 0.25


class LiveMeter:
    """The meter's part of the editor screen (see the module docstring)."""

    def init_meter(self) -> None:
        self.meters: dict[tuple[str, str], TokenMeter] = {}
        """(field, encoding) → meter; built in a worker, then edited in place on the UI thread."""
        self.estimates: dict[str, Estimate] = {}
        self._estimate_timer: Any = None
        self._meter_shape = (0, 0)
        self._counting = False
        self._recount_again = False
        self._generation = 0


    def encodings(self) -> dict[str, tuple[str, bool]]:
        """target → (encoding name, exact?) — ``encoding_name_for`` is a cheap lookup (no tiktoken load)."""
        from workbench.core.tokens.encodings import encoding_name_for

        out = {}
        for target in self.targets():
            provider, _, model = target.partition("/")
            out[target] = encoding_name_for(provider.lower(), model)
        return out

    def sync_variables(self) -> None:
        """One Input per placeholder: new names get one, vanished names lose theirs, the rest stay."""
        names = variable_names(*(self.text_of(f) for f in self.fields()))
        if names == list(self.variable_inputs):
            return
        panel = self.query_one("#variables", Vertical)
        for name in [n for n in self.variable_inputs if n not in names]:
            self.variable_inputs.pop(name).remove()
        new = []
        for name in names:
            if name not in self.variable_inputs:
                field = Input(self.variable_values.get(name, ""), placeholder=f"value of {name}", id=f"var-{name}")
                field.border_title = name
                self.variable_inputs[name] = field
                new.append(field)
        if new:
            panel.mount_all(new)
        panel.display = bool(names)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        area = event.text_area
        if not isinstance(area, MeteredTextArea) or area.id not in self.fields():
            return
        self.sync_variables()
        if area.hooked_changes:  # an edit the meter already took (``meter_edits``, before the paint)
            area.hooked_changes -= 1
            return
        self.meter_edits(area)

    def meter_edits(self, area: MeteredTextArea) -> None:
        """Apply an area's pending edits to its meters and redraw the meter (a recount when they cannot apply)."""
        if not self.ready or area.id not in self.fields():
            return
        edits, area.pending_edits = area.pending_edits, []
        if self._counting:
            self._recount_again = True
            return
        if area.id in self._templated or ("{{" in area.text and VARIABLE.search(area.text)):
            self.recount()  # the meter counts substituted text: edits' offsets do not apply
            return
        length = len(area.text)
        for (field, _), meter in self.meters.items():
            if field != area.id:
                continue
            try:
                for start, end, text in edits:
                    meter.edit(start, end, text)
            except ValueError:
                pass
            if len(meter) != length:  # load_text, undo/redo: count again in a worker
                self.recount()
                return
        self._render_meter()
        self._schedule_estimate()

    def on_input_changed(self, event: Input.Changed) -> None:
        field_id = event.input.id or ""
        if field_id.startswith("var-"):
            self.variable_values[field_id.removeprefix("var-")] = event.value
            if self.ready and self._templated:
                self.recount()
            return
        if not self.ready:
            return
        if event.input.id == "targets":
            if {enc for enc, _ in self.encodings().values()} - {enc for _, enc in self.meters}:
                self.recount()
            self._render_meter()
        self._schedule_estimate()

    def recount(self) -> None:
        """Count every text from scratch, for every encoding in use, in a thread worker."""
        if self._counting:
            self._recount_again = True
            return
        self._counting = True
        fields = self.fields()
        texts = {field: self.meter_text(field) for field in fields}
        self._templated = {field for field in fields if VARIABLE.search(self.text_of(field))}
        encodings = {enc for enc, _ in self.encodings().values()} or {"o200k_base"}
        for area in self.query(MeteredTextArea):
            area.pending_edits.clear()

        def count() -> None:
            from workbench.core.tokens.encodings import get_encoding
            from workbench.core.tokens.meter import TokenMeter

            try:
                meters = {(field, enc): TokenMeter(get_encoding(enc), texts[field])
                          for field in fields for enc in encodings}
            except Exception as exc:
                self.app.call_from_thread(self._counted, None, exc)
                return
            self.app.call_from_thread(self._counted, meters, None)

        self.run_worker(count, thread=True, exit_on_error=False, group="count", name="count-tokens")

    def _counted(self, meters: dict[tuple[str, str], TokenMeter] | None, error: Exception | None) -> None:
        self._counting = False
        if error is not None:
            self.app.report(error, "token count failed: ")  # type: ignore[attr-defined]
            return
        assert meters is not None
        current = {field: self.meter_text(field) for field in self.fields()}
        if (self._recount_again or set(current) != {f for f, _ in meters}
                or any(m.text != current[f] for (f, _), m in meters.items())):
            self._recount_again = False
            self.meters = meters
            self.recount()
            return
        self.meters = meters
        gc.freeze()  # long-lived: a full collection no longer walks the encodings and meters (pauses of 100+ ms)
        self._render_meter()
        self._schedule_estimate()

    def message_tokens(self, encoding: str) -> list[int] | None:
        """Each message's own token count from the live meters, the system prompt first when there is one
        (``None`` while counting)."""
        system = self.meters.get(("system", encoding))
        turns = [self.meters.get((turn, encoding)) for turn in self.turn_ids]
        if system is None or any(t is None for t in turns):
            return None
        counts = [t.count for t in turns if t is not None]
        return [system.count, *counts] if len(system) else counts

    def input_tokens(self, encoding: str) -> int | None:
        """Input tokens as ``count_chat`` counts them, from the live meters (``None`` while counting)."""
        from workbench.core.tokens.encodings import chat_tokens

        counts = self.message_tokens(encoding)
        return None if counts is None else chat_tokens(counts)

    def meter_rows(self) -> list[dict[str, Any]]:
        """One row per target: tokens (live), and the last estimate's cost range and headroom."""
        rows = []
        for target, (encoding, exact) in self.encodings().items():
            tokens = self.input_tokens(encoding)
            est = self.estimates.get(target)
            rows.append({"target": target, "tokens": tokens, "exact": exact, "estimate": est})
        return rows

    def _render_meter(self) -> None:
        """Redraw the meter; a layout pass only when its shape (lines, widest line) changed."""
        text = meter_text(self.meter_rows())
        lines = text.plain.split("\n")
        shape = (len(lines), max(map(len, lines)))
        self.query_one("#meter", Static).update(text, layout=shape != self._meter_shape)
        self._meter_shape = shape

    def _schedule_estimate(self) -> None:
        if self._estimate_timer is not None:
            self._estimate_timer.stop()
        self._estimate_timer = self.set_timer(ESTIMATE_DEBOUNCE_S, self._estimate)

    def _estimate(self) -> None:
        try:
            request = self._request_for_estimate()
        except Exception:
            return
        targets = self.targets()
        # The meters' counts, so the worker prices without tokenizing the whole text again.
        counts = {target: self.message_tokens(encoding) for target, (encoding, _) in self.encodings().items()}
        app = self.app
        self._generation += 1
        generation = self._generation

        def run() -> None:
            from workbench.core.tokens.estimate import estimate

            try:
                prices = app.settings().prices  # type: ignore[attr-defined]
            except Exception as exc:
                app.report(exc, "no cost estimate: ")  # type: ignore[attr-defined]
                return
            results: dict[str, Estimate] = {}
            for target in targets:
                try:
                    results[target] = estimate(request, target, prices, message_tokens=counts.get(target))
                except WorkbenchError:
                    continue
            app.call_from_thread(self._estimated, results, generation)

        self.run_worker(run, thread=True, exclusive=True, exit_on_error=False, group="estimate", name="estimate")

    def _request_for_estimate(self) -> ChatRequest:
        from workbench.core.request import ChatRequest, Params

        try:
            max_tokens = self.max_tokens()
        except ValueError:
            max_tokens = None
        return ChatRequest(system=self.meter_text("system") or None, params=Params(max_tokens=max_tokens),
                           messages=tuple({"role": r, "content": t} for r, t in self.messages()))  # type: ignore[arg-type]

    def _estimated(self, results: dict[str, Estimate], generation: int) -> None:
        if generation != self._generation:
            return
        self.estimates = results
        self._render_meter()
