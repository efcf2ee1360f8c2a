"""What a file is, from its bytes: the media type by its magic number, an image's pixel size from its header,
a PDF's page count (rough). Standard library only; nothing is decoded beyond the header."""

from __future__ import annotations

import re
import struct

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
PDF = "application/pdf"
MEDIA_TYPES = (*IMAGE_TYPES, PDF)
"""What a user turn may carry: PNG, JPEG, GIF and WEBP images, and PDF documents."""

_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
"""The JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic): they hold the size."""
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")


def sniff(data: bytes) -> str | None:
    """The media type by the file's magic number (``None``: none of :data:`MEDIA_TYPES`)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:1024].lstrip(b"\xef\xbb\xbf\r\n\t ").startswith(b"%PDF-"):
        return PDF
    return None


def image_size(data: bytes, media_type: str) -> tuple[int, int] | None:
    """(width, height) in pixels from the image's header; ``None`` when the header is cut or malformed."""
    try:
        if media_type == "image/png":
            if data[12:16] != b"IHDR":
                return None
            return _positive(*struct.unpack(">II", data[16:24]))
        if media_type == "image/gif":
            return _positive(*struct.unpack("<HH", data[6:10]))
        if media_type == "image/webp":
            return _webp_size(data)
        if media_type == "image/jpeg":
            return _jpeg_size(data)
    except struct.error:
        return None
    return None


def pdf_pages(data: bytes) -> int:
    """A PDF's page count, rough: its ``/Type /Page`` objects (pages in compressed object streams are not seen),
    at least 1."""
    return max(1, len(_PDF_PAGE.findall(data)))


def _positive(width: int, height: int) -> tuple[int, int] | None:
    return (width, height) if width > 0 and height > 0 else None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":  # lossy: a key frame's start code, then 14-bit width and height
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", data[26:30])
        return _positive(width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L":  # lossless: a signature byte, then 14-bit width-1 and height-1
        if data[20:21] != b"\x2f":
            return None
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: 24-bit canvas width-1 and height-1
        if len(data) < 30:
            return None
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    end = len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            return _positive(width, height)
        if length < 2:
            return None
        pos += 2 + length
    return None
