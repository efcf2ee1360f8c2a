"""A proxy URL as it may be shown: without its password (``config show``, errors, the network settings)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit


def redact_url(url: str) -> str:
    """A proxy URL without its password (``http://user:***@host:3128``)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL at all: still hide whatever sits between "//" and "@"
        return re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username}:***@{netloc}").geturl()
