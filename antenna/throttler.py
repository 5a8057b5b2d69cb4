"""Throttler: decides per crash whether to ACCEPT, DEFER, REJECT or FAKEACCEPT it.

Rules are Python code found by dotted path (``THROTTLE_RULES``), evaluated in order;
the first rule whose condition matches decides.  This follows Antenna's documented
throttler so existing rule sets port over unchanged.
"""

import importlib
import logging
import random
import re

from everett.manager import Option

from antenna.product import with_product_names

LOGGER = logging.getLogger(__name__)

ACCEPT = 0  # save and process
DEFER = 1  # save, do not process
REJECT = 2  # drop, tell the client (it must not retry)
FAKEACCEPT = 3  # drop, but answer as if accepted
CONTINUE = 4  # rule does not decide; go on with the next one

RESULT_NAMES = {ACCEPT: "ACCEPT", DEFER: "DEFER", REJECT: "REJECT", FAKEACCEPT: "FAKEACCEPT"}


def parse_attribute(val):
    """Everett parser: ``package.module.NAME`` to the object it names."""
    module_path, _, attribute = val.rpartition(".")
    try:
        return getattr(importlib.import_module(module_path), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"cannot import {val!r}: {exc}") from exc


class Rule:
    """One throttling rule.

    :arg name: shows up in ``Discarded=rule_<name>`` and in the raw crash.
    :arg key: annotation to look at, or ``*`` for the whole raw crash.
    :arg condition: callable ``(throttler, value) -> bool``, a compiled regex, or a
        literal value compared for equality.
    :arg result: ACCEPT, DEFER, REJECT, FAKEACCEPT, CONTINUE, or an int/float
        percentage: that share of matching crashes is ACCEPTed, the rest DEFERred.
        As in Antenna, the values 0-4 mean the constants, so a percentage rule
        uses 5 or more (or a float such as ``0.5``).
    """

    def __init__(self, name, key, condition, result):
        self.name = name
        self.key = key
        self.condition = condition
        self.result = result

    def __repr__(self):
        return f"<Rule {self.name}: {self.key}>"

    def match(self, throttler, raw_crash):
        if self.key == "*":
            value = raw_crash
        elif self.key in raw_crash:
            value = raw_crash[self.key]
        else:
            return False
        condition = self.condition
        if callable(condition):
            return condition_holds(LOGGER, f"throttle rule {self.name}", condition, throttler, value)
        if isinstance(condition, re.Pattern):
            return isinstance(value, str) and condition.search(value) is not None
        return value == condition


def condition_holds(logger, what, condition, *args):
    """``bool(condition(*args))`` for an operator's rule (a throttle rule, a Sentry route).

    Rules are written for well-formed crashes; one that raises on a client value it did
    not expect counts as no match and is logged.  Otherwise the collector would answer
    500 (the client retries forever) and the processor would send the crash nowhere.
    """
    try:
        return bool(condition(*args))
    except Exception as exc:
        logger.warning("%s failed, treated as no match: %r", what, exc)
        return False


def always_match(throttler, value):
    return True


def match_infobar_true(throttler, value):
    """Crashes submitted by a "submit crash" infobar carry ``SubmittedFromInfobar=true``."""
    return str(value).lower() == "true"


class Throttler:
    """Runs the configured rules; also enforces the supported-products list."""

    class Config:
        throttle_rules = Option(
            default="antenna.throttler.ACCEPT_ALL",
            parser=parse_attribute,
            doc="Dotted path to the list of ``Rule`` objects to apply, in order.",
        )
        products = Option(
            default="antenna.throttler.ALL_PRODUCTS",
            parser=parse_attribute,
            doc=(
                "Dotted path to the list of supported ProductName values (Electron's "
                "``_productName`` or Crashpad's ``prod`` when ProductName is absent); "
                "crashes for other products are rejected as ``unsupported_product``. "
                "``ALL_PRODUCTS`` (None) supports every product."
            ),
        )

    def __init__(self, config, rng=None):
        self.config = config.with_options(self)
        self.rules = list(self.config("throttle_rules"))
        products = self.config("products")
        self.products = None if products is None else set(products)
        self.rng = rng or random.Random()

    def throttle(self, raw_crash):
        """Return ``(result, rule_name, percentage)`` for a raw crash."""
        raw_crash = with_product_names(raw_crash)
        if self.products is not None and raw_crash.get("ProductName") not in self.products:
            return REJECT, "unsupported_product", None
        if raw_crash.get("Throttleable") == "0":
            return ACCEPT, "THROTTLEABLE_0", 100
        for rule in self.rules:
            if not rule.match(self, raw_crash):
                continue
            result = rule.result
            if result == CONTINUE:
                continue
            if result in RESULT_NAMES and not isinstance(result, float):
                return result, rule.name, 100 if result == ACCEPT else 0
            if self.rng.random() * 100 < result:
                return ACCEPT, rule.name, result
            return DEFER, rule.name, result
        return ACCEPT, "NO_MATCH", 100


ACCEPT_ALL = [Rule("accept_everything", "*", always_match, ACCEPT)]

ALL_PRODUCTS = None
