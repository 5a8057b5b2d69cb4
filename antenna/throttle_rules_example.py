"""Example rule set for a typical desktop product; copy it and adapt.

Use with ``THROTTLE_RULES=antenna.throttle_rules_example.RULES`` and
``PRODUCTS=antenna.throttle_rules_example.PRODUCTS``.
"""

import re

from antenna.throttler import ACCEPT, DEFER, REJECT, Rule, always_match, match_infobar_true

PRODUCTS = ["MyApp", "MyApp Beta"]


def has_no_dump(throttler, raw_crash):
    """Crash reports without a minidump carry nothing to symbolicate."""
    return not raw_crash.get("dump_checksums")


RULES = [
    # Reports the user sent by clicking an infobar are often duplicates: drop them.
    Rule("infobar_is_true", "SubmittedFromInfobar", match_infobar_true, REJECT),
    # Reports that lack a minidump are useless to the processor.
    Rule("has_no_dump", "*", has_no_dump, REJECT),
    # Nightly and beta users opted into diagnostics: process everything.
    Rule("is_nightly_or_beta", "ReleaseChannel", re.compile(r"^(nightly|beta)$"), ACCEPT),
    # Old versions: store (for later analysis) but don't spend processor time.
    Rule("is_old_version", "Version", re.compile(r"^[0-2]\."), DEFER),
    # Release: process 10 %, store the rest.
    Rule("release_sample", "*", always_match, 10),
]
