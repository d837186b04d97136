"""Keep secrets out of what people see: the one place URLs and free text are redacted.

* :func:`redact_url` replaces the password of a URL (``redis://user:pw@host``) with ``***``;
* :func:`redact_text` does it for every URL inside a message (a traceback, a log line);
* :class:`RedactingFilter` applies it to every log record of the process (``serve`` and
  ``worker`` install it with their logging), so a library that prints the URL it was
  given still shows no password.

The helpers never raise: a malformed URL is redacted by pattern rather than passed through.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# scheme://[user]:password@ in free text; the password runs up to the last '@' before the host
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^\s/]*@")

__all__ = ["MASK", "RedactingFilter", "install_log_redaction", "redact_text", "redact_url"]


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (safe for logs, errors and pages)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # a port that is not a number, say: fall back to the pattern
        return redact_text(url)
    if password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}"))


def redact_text(text: str) -> str:
    """Every ``scheme://user:password@`` in ``text`` with the password masked."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and its traceback text) with URLs redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: leave it to the handler
            return True
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


def install_log_redaction() -> None:
    """Put a :class:`RedactingFilter` on every handler of the root logger."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
