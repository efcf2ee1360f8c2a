"""The trace browser: keyset pages of calls in a DataTable, FTS search, a detail panel, replay, promote to a test.

Every database read runs in a thread worker (exclusive: a reload cancels the reads of the state it
replaces); the next page loads when the cursor nears the end. The screen follows the app's count of traced
calls (a reactive): while it shows, new calls reload it. Follow mode (``f``) also watches the log for calls other
processes write (``workbench proxy``, a run elsewhere: :mod:`workbench.core.traces.follow`), newest at the top.
"""

from __future__ import annotations

import itertools
import json
import struct
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input, Sparkline, Static
from textual.worker import Worker, get_current_worker

from workbench.core.errors import WorkbenchError
from workbench.core.traces.follow import POLL_S, Follower
from workbench.ui.messages import ReplayRequested
from workbench.ui.render import fmt_ms, fmt_usd, trace_detail
from workbench.ui.screens.team_switching import TeamSwitchingScreen

if TYPE_CHECKING:
    from workbench.core.request import ChatRequest

_FINISH_STYLE = {"length": "bold red", "error": "bold red", "stop": "green"}
PAGE = 100
PREFETCH_ROWS = 10
EXACT_TOTALS_MAX_CALLS = 50_000
"""Up to this many calls, totals come from ``exact_stats`` (exact percentiles); above, from the rollups."""


def totals_of(groups: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-status ``stats`` rows summed: calls, spend, unpriced calls, the cache hit ratio (cache reads ÷ the
    input tokens of the calls that reported cache numbers; unknown when none did); TTFT percentiles of the ``ok``
    calls (percentiles do not add across groups; failed calls rarely have a first token)."""
    spends = [g["spend_usd"] for g in groups if g.get("spend_usd") is not None]
    ok = next((g for g in groups if g.get("status") == "ok"), None)
    inputs = sum(g.get("cache_input_tokens") or 0 for g in groups)  # of the calls that reported cache numbers
    return {"calls": sum(g["calls"] or 0 for g in groups),
            "cache_hit_ratio": sum(g.get("cache_read_tokens") or 0 for g in groups) / inputs if inputs else None,
            "spend_usd": sum(spends) if spends else None,
            "unpriced_calls": sum(g.get("unpriced_calls") or 0 for g in groups),
            "ttft_p50_ms": None if ok is None else ok.get("ttft_p50_ms"),
            "ttft_p95_ms": None if ok is None else ok.get("ttft_p95_ms")}


def read_totals(store: Any, filters: Any = None) -> dict[str, Any]:
    """Totals for ``filters``: exact on small stores, from the rollups on big ones."""
    from workbench.core.traces.filters import Filters

    filters = filters or Filters()
    (count,) = store.conn.execute("SELECT count(*) FROM calls").fetchone()
    stats = store.exact_stats if count <= EXACT_TOTALS_MAX_CALLS else store.stats
    return totals_of(stats("status", filters))


def totals_text(totals: dict[str, Any] | None, searching: bool) -> Text:
    if totals is None:
        return Text("totals: …", style="dim")
    out = Text()
    out.append("calls ", style="dim")
    out.append(f"{totals['calls']:,}")
    out.append("   spend ", style="dim")
    out.append(fmt_usd(totals["spend_usd"]) if totals["spend_usd"] is not None else "$0")
    if totals["unpriced_calls"]:
        out.append(f" +{totals['unpriced_calls']} unpriced", style="yellow")
    out.append("   TTFT p50 ", style="dim")
    out.append(fmt_ms(totals["ttft_p50_ms"]))
    out.append("  p95 ", style="dim")
    out.append(fmt_ms(totals["ttft_p95_ms"]))
    out.append(" (ok calls)", style="dim")
    if totals.get("cache_hit_ratio") is not None:
        out.append("   cache hit ", style="dim")
        out.append(f"{totals['cache_hit_ratio']:.0%}")
    if searching:
        out.append("   totals: all calls, search not applied", style="dim italic")
    return out


def team_page(conn: Any, cursor: str | None, text: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """A page of the team store's calls (found by ``text`` when given) and, for the first page, the totals."""
    from workbench.core.team.queries import TeamTraces

    store = TeamTraces(conn)
    rows = store.search(text, before=cursor, limit=PAGE) if text else store.page(before=cursor, limit=PAGE)
    return rows, totals_of(store.stats("status")) if cursor is None else None


def team_call(conn: Any, call_id: str) -> dict[str, Any] | None:
    from workbench.core.team.queries import TeamTraces

    return TeamTraces(conn).get(call_id)


def chunk_gaps_ms(packed: bytes | None) -> list[float]:
    """Inter-chunk gaps (ms) from a payload's ``chunk_ms`` (little-endian float32 arrival times)."""
    if not packed or len(packed) % 4:
        return []
    stamps = struct.unpack(f"<{len(packed) // 4}f", packed)
    return [b - a for a, b in itertools.pairwise(stamps)]


class TracesScreen(TeamSwitchingScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "replay", "Replay in editor", priority=True),
        Binding("ctrl+f", "focus_search", "Search"),
        Binding("ctrl+l", "reload", "Reload"),
        Binding("f", "toggle_follow", "Follow"),
        Binding("p", "promote", "Promote to test"),
        Binding("t", "toggle_store", "Local/team", show=False),
    ]
    DEFAULT_CSS = """
    TracesScreen #traces-main { height: 1fr; }
    TracesScreen #totals { height: 1; padding: 0 1; }
    TracesScreen #calls { width: 1fr; }
    TracesScreen #detail-scroll { width: 52; border-left: solid $primary; padding: 0 1; }
    TracesScreen #gaps-label { color: $text-muted; display: none; }
    TracesScreen #gaps { height: 2; display: none; margin-bottom: 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.query_text = ""
        self.cursor: Any = None
        """Keyset cursor: the last row's id (browse) or ``_cursor`` (search)."""
        self.exhausted = False
        self.page_loading = False
        self.rows: list[dict[str, Any]] = []
        self.detail: dict[str, Any] | None = None
        self.totals: dict[str, Any] | None = None
        """Totals (calls, spend, unpriced, TTFT p50/p95) of the current state, read with the first page."""
        self.gaps: list[float] = []
        """The shown call's inter-chunk gaps (ms), drawn as a sparkline above the detail."""
        self.follower: Follower | None = None
        """Follow mode: the calls written since the last poll (``None``: off, or not started yet)."""
        self.follow_timer: Timer | None = None
        """Local or team (``t``): the store the pages, totals and details are read from."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="search prompts and replies (full text; Enter to search, empty: all)", id="search")
        yield Static(totals_text(None, False), id="totals")
        with Horizontal(id="traces-main"):
            yield DataTable(id="calls", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="detail-scroll"):
                yield Static(id="gaps-label", markup=False)
                yield Sparkline([], id="gaps")
                yield Static("Select a call to see it here.", id="detail", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#calls", DataTable)
        for label in ("time", "target", "finish", "TTFT", "total", "in/out", "cost"):
            table.add_column(label, key=label)
        self.watch(self.workbench, "traced", self._traced, init=False)

    def _traced(self) -> None:
        """Calls were traced: shown at once while the screen is current (else when it resumes)."""
        if self.is_current:
            self.reload()

    def on_screen_resume(self) -> None:
        self.reload()
        self.query_one("#calls", DataTable).focus()

    def action_reload(self) -> None:
        self.reload()

    @property
    def following(self) -> bool:
        return self.follow_timer is not None

    def on_unmount(self) -> None:
        self.switch.close()

    def store_switched(self) -> None:
        if self.following:  # follow mode watches the local log
            self.action_toggle_follow()
        self.sub_title = self.switch.label()
        self.reload()

    def action_toggle_follow(self) -> None:
        """Follow mode on or off: while on, calls written by any process appear at the top as they are written."""
        if self.switch.on:
            self.notify("follow mode watches the local trace log\nnext: t switches back to it", timeout=5)
            return
        if self.follow_timer is not None:
            self.follow_timer.stop()
            self.follow_timer, self.follower = None, None
            self.sub_title = ""
            return
        self.follow_timer = self.set_interval(POLL_S, self.poll_follow)
        self.sub_title = "following new calls (f stops)"
        self.poll_follow()

    @work(thread=True, exclusive=True, exit_on_error=False, group="follow", name="trace-follow")
    def poll_follow(self) -> None:
        """Follow mode's poll: the first one marks where the log is, the next ones reload on new calls."""
        if not self.is_current:  # resuming reloads anyway
            return
        app = self.workbench
        try:
            with app.store_lock:
                if self.follower is None:
                    self.follower = Follower(app.store())
                    return
                rows = self.follower.poll()
        except Exception as exc:
            app.report(exc, "cannot read the trace store: ")
            return
        if rows:
            app.call_from_thread(self._followed)

    def _followed(self) -> None:
        if self.following:
            self.reload()

    def action_focus_search(self) -> None:
        self.query_one("#search", Input).focus()

    def reload(self) -> None:
        self.cursor, self.exhausted, self.page_loading, self.rows = None, False, False, []
        self.totals = None
        self.query_one("#totals", Static).update(totals_text(None, bool(self.query_text)))
        self.query_one("#calls", DataTable).clear()
        self.load_page(fresh=True)

    @on(Input.Submitted, "#search")
    def _search(self, event: Input.Submitted) -> None:
        if event.input.id == "search":
            self.query_text = event.value.strip()
            self.reload()
            self.query_one("#calls", DataTable).focus()

    def load_page(self, *, fresh: bool = False) -> None:
        """The next page (``fresh``: the first page of a new state, cancelling the reads of the old one)."""
        if (self.page_loading or self.exhausted) and not fresh:
            return
        self.page_loading = True
        self.read_page(self.cursor, self.query_text)

    @work(thread=True, exclusive=True, exit_on_error=False, group="page", name="trace-page")
    def read_page(self, cursor: Any, text: str) -> None:
        app = self.workbench
        totals = None
        try:
            if (reader := self.switch.reader) is not None:
                rows, totals = reader.read(lambda conn: team_page(conn, cursor, text))
            else:
                store = app.store()
                with app.store_lock:
                    rows = store.search(text, before=cursor, limit=PAGE) if text else \
                        store.page(before=cursor, limit=PAGE)
                    if cursor is None:  # the first page: the totals of this state too
                        totals = read_totals(store)
        except Exception as exc:
            app.report(exc, "cannot read the trace store: ")
            rows = None
        app.call_from_thread(self._add_page, rows, totals, get_current_worker())

    def _show_totals(self, totals: dict[str, Any]) -> None:
        self.totals = totals
        self.query_one("#totals", Static).update(totals_text(totals, bool(self.query_text)))

    def _add_page(self, rows: list[dict[str, Any]] | None, totals: dict[str, Any] | None, worker: Worker[None]) -> None:
        if worker.is_cancelled:  # a reload replaced the state this page was read for
            return
        self.page_loading = False
        if totals is not None:
            self._show_totals(totals)
        if rows is None:
            return
        if len(rows) < PAGE:
            self.exhausted = True
        if not rows:
            if not self.rows:
                self.query_one("#detail", Static).update(
                    "No calls match." if self.query_text else "No calls traced yet: run a race (f2, ctrl+r).")
            return
        self.cursor = rows[-1]["_cursor"] if self.query_text else rows[-1]["id"]
        table = self.query_one("#calls", DataTable)
        first = not self.rows
        self.rows.extend(rows)
        for row in rows:
            approx = "≈" if row.get("usage_estimated") else ""
            tokens = "–" if row.get("input_tokens") is None else \
                f"{approx}{row['input_tokens']}/{approx}{row.get('output_tokens')}"
            finish = row.get("finish_reason")
            table.add_row(
                datetime.fromtimestamp(row["ts"]).strftime("%m-%d %H:%M:%S"), row["target"],
                Text(finish or row["status"], style=_FINISH_STYLE.get(finish or "", "")),
                fmt_ms(row.get("ttft_ms")), fmt_ms(row.get("latency_ms")), tokens, fmt_usd(row.get("cost_usd")),
                key=row["id"])
        # DataTable measures new rows' widths when it is next idle and keeps rows already drawn (the header
        # among them) in a cache that knows nothing of widths: a frame drawn in between would keep a header
        # narrower than its columns. Once the widths are in, restyling drops that cache.
        table.call_after_refresh(table.notify_style_update)
        if first:
            self.show_detail(rows[0]["id"])

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = event.data_table
        if event.cursor_row >= table.row_count - PREFETCH_ROWS:
            self.load_page()
        if event.row_key.value is not None:
            self.show_detail(event.row_key.value)

    @work(thread=True, exclusive=True, exit_on_error=False, group="detail", name="trace-detail")
    def show_detail(self, call_id: str) -> None:
        app = self.workbench
        try:
            if (reader := self.switch.reader) is not None:
                call = reader.read(lambda conn: team_call(conn, call_id))
            else:
                with app.store_lock:
                    call = app.store().get(call_id)
        except Exception as exc:
            app.report(exc, "cannot read the call: ")
            return
        if call is not None:
            app.call_from_thread(self._show_detail, call, get_current_worker())

    def _show_detail(self, call: dict[str, Any], worker: Worker[None] | None = None) -> None:
        if worker is not None and worker.is_cancelled:  # another call was highlighted meanwhile
            return
        self.detail = call
        detail = trace_detail(call)
        if "user" in call:  # from the team store: who pushed it
            detail = Text.assemble((f"pushed by {call['user']}@{call['host']}\n", "dim"), detail)
        self.query_one("#detail", Static).update(detail)
        gaps = chunk_gaps_ms((call.get("payload") or {}).get("chunk_ms"))
        self.gaps = gaps
        label, sparkline = self.query_one("#gaps-label", Static), self.query_one("#gaps", Sparkline)
        label.display = sparkline.display = bool(gaps)
        if gaps:
            ordered = sorted(gaps)
            label.update(f"inter-chunk gaps: {len(gaps)}, median {ordered[len(ordered) // 2]:.1f} ms, "
                         f"max {ordered[-1]:.1f} ms")
            sparkline.data = gaps

    def selected_request(self, action: str) -> tuple[dict[str, Any], ChatRequest] | None:
        """The selected call and the request it sent (its system prompt, turns with their tool calls and results,
        parameters, tools and tool choice), as stored; ``None`` (said) when there is none to ``action``."""
        from workbench.core.traces.replay import traced_request

        call = self.detail
        if call is None:
            self.workbench.report(WorkbenchError("no call selected", "pick a call in the table"))
            return None
        try:
            request = traced_request(call.get("id"), (call.get("payload") or {}).get("request_json"), action)
        except Exception as exc:
            self.workbench.report(exc, f"cannot {action}: ")
            return None
        return call, request

    def action_replay(self) -> None:
        selected = self.selected_request("replay")
        if selected is not None:
            call, request = selected
            self.post_message(ReplayRequested(request, [call["target"]]))

    def action_promote(self) -> None:
        """The selected call's reply as a test case of an eval suite (a captured call's as a workbench call's)."""
        selected = self.selected_request("promote")
        if selected is None:
            return
        call, request = selected
        payload = call.get("payload") or {}
        calls = [{"name": c.get("name") or "", "arguments": c.get("arguments") or ""}
                 for c in json.loads(payload.get("tool_calls_json") or "[]")]
        text = payload.get("response_text") or ""
        if not text and not calls:
            self.notify("this call has no reply to promote\nnext: pick a call that ended with one",
                        severity="warning", timeout=5)
            return
        self.open_promote(request, call["target"], text, calls)

    @work(thread=True, exit_on_error=False, group="list-suites", name="list-suites")
    def open_promote(self, request: ChatRequest, target: str, text: str, calls: list[dict[str, str]]) -> None:
        from functools import partial

        from workbench.core.evals.promote import RaceOrigin, suite_choices
        from workbench.ui.screens.modals import PromoteScreen
        from workbench.ui.screens.race import RaceScreen

        app = self.workbench
        workspace = app.workspace()
        origin = RaceOrigin(request, [target], None, {})
        asked = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        description = next((line.strip() for line in asked.splitlines() if line.strip()), "a traced call")[:60]
        screen = PromoteScreen(target, suite_choices(workspace, origin), text, description,
                               partial(RaceScreen.write_test, workspace, origin), calls)
        app.call_from_thread(app.push_screen, screen, self._promoted)

    def _promoted(self, said: str | None) -> None:
        if said is not None:
            self.workbench.tell(said)
