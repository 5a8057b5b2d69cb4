"""Crash ids: uuid4 strings whose last 7 characters carry throttle result and date.

``de1bb258-cbbf-4589-a673-34f800160918`` is accepted (``0``) on 2016-09-18.
Storage keys and the processor rely on that suffix, so it is built and read only here.
"""

import datetime
import re
import uuid

ACCEPT_DIGIT = "0"
DEFER_DIGIT = "1"

CRASH_ID_RE = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{5}([01])(\d{2})(\d{2})(\d{2})$"
)


def create_crash_id(timestamp=None, throttle_result=0):
    """New crash id for a crash received at ``timestamp`` with a 0/1 throttle digit."""
    timestamp = timestamp or datetime.datetime.now(datetime.timezone.utc)
    digit = DEFER_DIGIT if throttle_result == 1 else ACCEPT_DIGIT
    return str(uuid.uuid4())[:-7] + digit + timestamp.strftime("%y%m%d")


def is_valid_crash_id(crash_id):
    """True for a well-formed crash id with a real calendar date."""
    if not isinstance(crash_id, str):
        return False
    match = CRASH_ID_RE.match(crash_id)
    if not match:
        return False
    try:
        date_from_crash_id(crash_id)
    except ValueError:
        return False
    return True


def date_from_crash_id(crash_id):
    """The UTC date encoded in the crash id's last six characters.

    Read as ``strptime("%y%m%d")`` would (years 69-99 are 19xx), without its cost:
    storage keys need this date for every crash, on the collector's busy hub.
    """
    digits = crash_id[-6:]
    if len(digits) != 6 or not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"no date in crash id {crash_id!r}")
    year = int(digits[:2])
    return datetime.date(year + (1900 if year >= 69 else 2000), int(digits[2:4]), int(digits[4:]))


def throttle_digit(crash_id):
    """0 (ACCEPT) or 1 (DEFER) as encoded in the crash id."""
    return int(crash_id[-7])
