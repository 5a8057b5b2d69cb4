"""Scrubbing of personal and secret data before anything leaves for Sentry.

Crash annotations are free-form client data: they carry user home paths, e-mail addresses,
URLs (with session tokens in query strings), host names and the odd API key. The Sentry event
must carry none of these (DESIGN.md "Sentry event"), so every string that goes into it passes
through here. Scrubbing replaces rather than drops, so a reader still sees *that* a value was
there and its shape (``/home/<user>/lib/libfoo.so``).
"""

import functools
import re
import socket

FILTERED = "[Filtered]"

# Keys whose values are secrets or identify the machine/person: the value is never sent.
SENSITIVE_KEY_RE = re.compile(
    r"(secret|passw|pwd|token|api[_-]?key|auth|cookie|session|credential|private|dsn"
    r"|e-?mail|hostname|host_name|server_?name|computer_?name|user_?name|login)",
    re.IGNORECASE,
)

# Home directories: keep the layout, replace the user part.
_HOME_PATTERNS = [
    (re.compile(r"(?<![\w.])/home/[^/\s\"':;,]+"), "/home/<user>"),
    (re.compile(r"(?<![\w.])/Users/[^/\s\"':;,]+"), "/Users/<user>"),
    (re.compile(r"(?<![\w.])/var/home/[^/\s\"':;,]+"), "/var/home/<user>"),
    (re.compile(r"(?i)\b([a-z]:)?([\\/]+)(users|documents and settings)[\\/]+[^\\/\s\"':;,]+"),
     r"\1\2\3\2<user>"),
]
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_URL_RE = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'<>]+", re.IGNORECASE)


def _local_host_names():
    """Names of the machine the processor runs on; they must never reach an event."""
    names = {socket.gethostname(), socket.getfqdn()}
    return sorted((n for n in names if n and n != "localhost"), key=len, reverse=True)


_HOST_NAMES = _local_host_names()


def scrub_path(value):
    """Replace the user part of home directory paths (module paths, source file names)."""
    return _scrub_path(value) if isinstance(value, str) else value


@functools.lru_cache(maxsize=65536)
def _scrub_path(value):
    """Cached: an event scrubs thousands of module and file names, nearly all repeats."""
    for pattern, replacement in _HOME_PATTERNS:
        value = pattern.sub(replacement, value)
    return value


def scrub_text(value):
    """Scrub a free-form string: URLs, e-mail addresses, home paths, this host's names."""
    if not isinstance(value, str):
        return value
    value = _URL_RE.sub("[url]", value)
    value = _EMAIL_RE.sub("[email]", value)
    value = scrub_path(value)
    for name in _HOST_NAMES:
        # Whole words only: a short host name ("vm") must not mangle "jvm".
        value = re.sub(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", "[host]", value,
                       flags=re.IGNORECASE)
    return value


def scrub_annotations(annotations, allow_keys=()):
    """Scrub a mapping of annotations for the event's ``extra``.

    Keys in ``allow_keys`` are kept verbatim (an operator's explicit choice, e.g. a URL
    annotation they need); other keys that look sensitive get ``[Filtered]``; everything else
    is passed through :func:`scrub_text` (nested values recursively).
    """
    allowed = set(allow_keys)
    scrubbed = {}
    for key, value in annotations.items():
        if key in allowed:
            scrubbed[key] = value
        elif SENSITIVE_KEY_RE.search(key):
            scrubbed[key] = FILTERED
        else:
            scrubbed[key] = _scrub_value(value)
    return scrubbed


def _scrub_value(value):
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return scrub_annotations(value)
    if isinstance(value, list):
        return [_scrub_value(item) for item in value]
    return value
