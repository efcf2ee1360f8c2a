"""The editor's attachments: the images and PDFs of the last user turn (ctrl+o attaches one by its path, ``-``
removes them, ``detail low`` sets the images' OpenAI detail), read from a prompt file's paths and written back
relative to its folder (with each image's detail)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from textual.widgets import Static

from workbench.core.errors import WorkbenchError
from workbench.ui.base import WorkbenchScreen

if TYPE_CHECKING:
    from workbench.core.attachments import Attachment, AttachmentEntry
    from workbench.core.prompts import Prompt
    from workbench.ui.widgets.editor.meter import LiveMeter


class EditorAttachments(WorkbenchScreen):
    """The attachment half of the editor screen (:class:`~workbench.ui.screens.editor.EditorScreen`)."""

    attachments: list[Attachment]
    meter: LiveMeter

    def action_attach(self) -> None:
        """ctrl+o: a path to attach to the last user turn (``-`` removes the attachments)."""
        from workbench.ui.screens.modals import NameScreen

        held = ", ".join(a.name for a in self.attachments) or "none"
        self.app.push_screen(NameScreen("Attach an image or PDF to the last user turn", "",
                                        f"PNG, JPEG, GIF, WEBP or PDF, at most 20 MiB; '-' removes them all; "
                                        f"'detail low' (high, auto, none) sets the images' detail (now: {held})"),
                             self.attach)

    def attach(self, path: str | None) -> None:
        from workbench.core.attachments import load_attachment

        if path is None:  # escape: nothing changes
            return
        try:
            if path.split(maxsplit=1)[:1] == ["detail"]:
                self.set_attachments(self._with_detail(path.split(maxsplit=1)[1:]))
                return
            self.set_attachments([*self.attachments, load_attachment(path)] if path != "-" else [])
        except WorkbenchError as exc:
            self.workbench.report(exc)

    def _with_detail(self, words: list[str]) -> list[Attachment]:
        """The attachments with every image's OpenAI detail set to ``words`` (one of low, high, auto; none: unset,
        the provider's own)."""
        from dataclasses import replace

        from workbench.core.attachments import IMAGE_DETAILS

        detail = words[0].strip().lower() if words else ""
        if detail not in (*IMAGE_DETAILS, "none"):
            raise WorkbenchError(f"detail {detail or '(none given)'}: not one of {', '.join(IMAGE_DETAILS)} or none",
                                 "type 'detail low', for example")
        if not any(a.is_image for a in self.attachments):
            raise WorkbenchError("no image attached: detail is an image's setting", "attach an image first (ctrl+o)")
        kept = None if detail == "none" else detail
        return [replace(a, detail=kept) if a.is_image else a for a in self.attachments]

    def set_attachments(self, attachments: Sequence[Attachment]) -> None:
        self.attachments = list(attachments)
        shown = self.query_one("#attachments", Static)
        shown.update("attached: " + ", ".join(f"{a.name} ({a.media_type}, {a.size:,} B"
                                              f"{', detail ' + a.detail if a.detail else ''})" for a in attachments))
        shown.display = bool(attachments)
        self.meter.schedule_estimate()
        self.meter.render_meter()

    def attachment_paths(self) -> list[AttachmentEntry]:
        """The attachments as a prompt file holds them: paths relative to its ``prompts/`` folder when inside it,
        with an image's detail when it has one."""
        from pathlib import Path

        from workbench.core.attachments import entry_of
        from workbench.core.prompts import prompts_folder

        folder = prompts_folder(self.workbench.workspace()).resolve()
        paths = [Path(a.path or a.name) for a in self.attachments]
        return [entry_of(a, str(p.relative_to(folder)) if p.is_relative_to(folder) else str(p))
                for a, p in zip(self.attachments, paths, strict=True)]

    def load_prompt_attachments(self, prompt: Prompt) -> None:
        """The prompt's last user turn's attachments, read from their paths (relative to its folder)."""
        from workbench.core.attachments import load_entry
        from workbench.core.prompts import prompts_folder

        users = [m for m in prompt.messages if m.role == "user"]
        try:
            self.set_attachments([load_entry(entry, prompts_folder(self.workbench.workspace()))
                                  for entry in (users[-1].attachments if users else ())])
        except WorkbenchError as exc:
            self.set_attachments([])
            self.workbench.report(exc, f"prompt {prompt.name}: ")
