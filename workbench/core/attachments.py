"""Files a user turn carries: PNG, JPEG, GIF and WEBP images and PDF documents.

The type is sniffed from the bytes (:mod:`workbench.core.image_size`), never taken from the extension; a file
over :data:`MAX_ATTACHMENT_BYTES` is refused. An :class:`Attachment` holds the base64 data the wires send and
what the estimate needs (pixel size, page count); what is stored about it (traces, sessions) is
:meth:`Attachment.meta` and its path, never the bytes.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, Self, TypeVar

from workbench.core.bounds import check_text
from workbench.core.errors import ConfigError
from workbench.core.image_size import IMAGE_TYPES, PDF, image_size, pdf_pages, sniff

IMAGE_DETAILS = ("low", "high", "auto")
"""OpenAI's image ``detail`` values (``--image-detail``): ``low`` is one fixed-cost 512 px pass."""

MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
"""The largest file a turn may carry (20 MiB: OpenAI's and Gemini's inline limit; Anthropic takes less)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Attachment:
    media_type: str
    """``image/png``, ``image/jpeg``, ``image/gif``, ``image/webp`` or ``application/pdf``."""
    data: str = field(repr=False)
    """The file's bytes in base64 (standard alphabet, padded)."""
    name: str
    """The file name (no folder), as documents are sent."""
    size: int
    """Bytes."""
    sha256: str
    path: str | None = None
    """Where it was read from (absolute: a saved session or exported code finds it from anywhere)."""
    width: int | None = None
    height: int | None = None
    pages: int | None = None
    """A PDF's page count (rough, see :func:`~workbench.core.image_size.pdf_pages`)."""
    detail: str | None = None
    """An image's OpenAI ``detail`` (:data:`IMAGE_DETAILS`), sent as the OpenAI wires' ``detail`` and counted by
    the estimate; ``None``: not sent (the provider's ``auto``)."""

    @property
    def is_image(self) -> bool:
        return self.media_type in IMAGE_TYPES

    def data_url(self) -> str:
        return f"data:{self.media_type};base64,{self.data}"

    def meta(self) -> dict[str, Any]:
        """What traces keep: name, media type, size, sha256 (and the pixel size or pages), never the bytes."""
        out: dict[str, Any] = {"name": self.name, "media_type": self.media_type, "size": self.size,
                               "sha256": self.sha256}
        if self.width is not None:
            out.update(width=self.width, height=self.height)
        if self.pages is not None:
            out["pages"] = self.pages
        if self.detail is not None:
            out["detail"] = self.detail
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachedFile:
    """A file a prompt file or session attaches with settings of its own: ``{path: chart.png, detail: low}`` (a
    plain path is an entry too: :data:`AttachmentEntry`)."""

    __pydantic_config__: ClassVar[dict[str, str]] = {"extra": "forbid"}

    path: str
    detail: Literal["low", "high", "auto"] | None = None
    """The image's OpenAI ``detail`` (:data:`IMAGE_DETAILS`), as ``--image-detail`` sets it."""

    def __post_init__(self) -> None:
        check_text("path", self.path)


AttachmentEntry = str | AttachedFile
"""An ``attachments:`` entry of a prompt file or session: a path, or an :class:`AttachedFile`."""


def entry_path(entry: AttachmentEntry) -> str:
    return entry if isinstance(entry, str) else entry.path


def load_entry(entry: AttachmentEntry, base: Path | None = None, *, where: str | None = None) -> Attachment:
    """The attachment an entry names, with its ``detail`` (an image's only: a :class:`ConfigError` for a PDF)."""
    attachment = load_attachment(entry_path(entry), base, where=where)
    if isinstance(entry, str) or entry.detail is None:
        return attachment
    if not attachment.is_image:
        raise ConfigError(f"{where + ': ' if where else ''}{entry.path}: detail is an image's setting, not a "
                          f"{attachment.media_type}'s", "drop detail: from this entry")
    return replace(attachment, detail=entry.detail)


def entry_of(attachment: Attachment, path: str | None = None) -> AttachmentEntry:
    """How a prompt file or session names ``attachment``: its ``path`` (default: where it was read), with its
    detail when it has one."""
    shown = path or attachment.path or attachment.name
    return shown if attachment.detail is None else AttachedFile(path=shown, detail=attachment.detail)  # type: ignore[arg-type]


def attachment_from_bytes(data: bytes, name: str, *, path: str | None = None, where: str | None = None) -> Attachment:
    """The attachment of a file's bytes; :class:`ConfigError` naming ``where`` (default: ``name``) when it is too
    large or not one of the accepted types."""
    shown = where or name
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise _too_large(shown, len(data))
    media_type = sniff(data)
    if media_type is None:
        raise ConfigError(f"{shown}: not a PNG, JPEG, GIF, WEBP image or PDF document (by its content)",
                          "attach an image or a PDF; the type is read from the bytes, not the extension")
    size = image_size(data, media_type) if media_type != PDF else None
    if media_type != PDF and size is None:
        raise ConfigError(f"{shown}: a {media_type} file whose header is cut or malformed",
                          "re-save the image and attach it again")
    return Attachment(media_type=media_type, data=base64.b64encode(data).decode("ascii"), name=name,
                      size=len(data), sha256=hashlib.sha256(data).hexdigest(), path=path,
                      width=size[0] if size else None, height=size[1] if size else None,
                      pages=pdf_pages(data) if media_type == PDF else None)


def load_attachment(path: str, base: Path | None = None, *, where: str | None = None) -> Attachment:
    """The attachment read from ``path`` (relative to ``base`` when given and ``path`` is relative).

    ``where`` names the place the path came from in errors (``prompts/x.yaml:7``); the path is said too."""
    file = Path(path).expanduser()
    if base is not None and not file.is_absolute():
        file = base / file
    shown = f"{where}: {path}" if where else path
    try:
        with file.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > MAX_ATTACHMENT_BYTES:
                raise _too_large(shown, size)
            data = fh.read(MAX_ATTACHMENT_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read the attachment: {exc.strerror}", "check the path") from None
    return attachment_from_bytes(data, file.name, path=str(file.resolve()), where=shown)


def _too_large(shown: str, size: int) -> ConfigError:
    return ConfigError(f"{shown}: {size / 1048576:.1f} MiB is over the {MAX_ATTACHMENT_BYTES // 1048576} MiB limit "
                       "for an attachment", "attach a smaller file (scale the image down, split the PDF)")


def load_attachments(paths: Sequence[str], base: Path | None = None, *,
                     detail: str | None = None) -> tuple[Attachment, ...]:
    """The files at ``paths`` (``workbench run --image``), for :meth:`~workbench.core.request.ChatRequest.
    with_attachments`; ``detail`` (``--image-detail``) is set on each image, and needs one."""
    files = tuple(load_attachment(path, base) for path in paths)
    if detail and not any(a.is_image for a in files):
        raise ConfigError("--image-detail without an attached image", "attach one with --image PATH")
    return tuple(replace(a, detail=detail) if detail and a.is_image else a for a in files)


class Attachable(Protocol):
    """A request whose last user turn takes attachments (:class:`~workbench.core.request.ChatRequest`)."""

    def with_attachments(self, attachments: Sequence[Attachment]) -> Self: ...


_Request = TypeVar("_Request", bound=Attachable)


def with_attachments(request: _Request, attachments: Sequence[Attachment]) -> _Request:
    """``request`` with ``attachments`` added to its last user turn."""
    return request.with_attachments(attachments)


def attach(request: _Request, paths: Sequence[str], base: Path | None = None) -> _Request:
    """``request`` with the files at ``paths`` attached to its last user turn."""
    return request.with_attachments(load_attachments(paths, base))
