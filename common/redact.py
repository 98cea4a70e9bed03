"""Credentials never reach a log, an error or a status message: URLs are shown without their password."""

from __future__ import annotations

import re
from urllib.parse import urlsplit


def redact(url: str) -> str:
    """The URL without its password, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username}:***@{netloc}").geturl()


def redact_urls(text: str) -> str:
    """Status messages are read by the whole fleet: no credentials from a URL in them."""
    return re.sub(r"[a-z][a-z0-9+.-]*://[^\s'\"]+", lambda m: redact(m.group(0)), text)
