"""Choose the Sentry DSN for a crash, throttler-style: the first matching route wins.

Different products (or device families) usually belong to different Sentry projects. Rules
live in a Python module named by ``PROCESSOR_SENTRY_ROUTES`` (a dotted path to a list of
``Route``), so they can use any logic; ``PROCESSOR_SENTRY_DSN`` is where everything else goes.
Routes see ``ProductName``/``Version`` filled in from Electron's and Crashpad's names
(``antenna.product.with_product_names``), so one route covers every client of a product.

A route's ``dsn`` is either a DSN (contains ``://``), the name of a configuration key holding
one (``"SENTRY_DSN_MOBILE"`` reads ``PROCESSOR_SENTRY_DSN_MOBILE`` or ``SENTRY_DSN_MOBILE``
from the environment or env file, so secrets stay out of code), or None to send nowhere.
Names are resolved once at start-up: a route naming a missing key is a configuration error.
"""

import importlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from everett import NO_VALUE
from everett.manager import Option

from antenna.product import with_product_names
from antenna.throttler import condition_holds
from processor.sentry_delivery import mask_dsn

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    """``condition`` is a callable on the raw crash, or a dict annotation -> expected value
    (a string compared exactly, or a compiled regex searched); every entry must match."""

    name: str
    condition: Callable[[dict], bool] | Mapping[str, Any]
    dsn: str | None

    def matches(self, raw_crash):
        if callable(self.condition):
            # One that raises lets the crash go on to the next route and the default DSN.
            return condition_holds(logger, f"Sentry route {self.name}", self.condition, raw_crash)
        for key, expected in self.condition.items():
            value = raw_crash.get(key)
            if not isinstance(value, str):
                return False
            if isinstance(expected, re.Pattern):
                if not expected.search(value):
                    return False
            elif value != expected:
                return False
        return True


def parse_routes(value):
    """``"package.module.NAME"`` -> the list of routes it names; empty string -> []."""
    if not value:
        return []
    module_name, _, attr = value.rpartition(".")
    routes = getattr(importlib.import_module(module_name), attr)
    if not all(isinstance(route, Route) for route in routes):
        raise ValueError(f"{value} must be a list of processor.routing.Route")
    return list(routes)


class SentryRouter:
    """Resolves routes and DSNs once; ``pick_dsn`` is then a pure lookup."""

    class Config:
        sentry_dsn = Option(
            default="",
            doc="Default Sentry DSN for crashes no route claims; empty: do not send them.",
        )
        sentry_routes = Option(
            default="",
            parser=parse_routes,
            doc="Dotted path to a list of processor.routing.Route, tried in order "
            "(e.g. processor.routes_example.ROUTES).",
        )

    def __init__(self, config):
        self.config = config.with_options(self)
        self._routes = []
        for route in self.config("sentry_routes"):
            self._routes.append((route, self._resolve(config, route)))
        self._default = self.config("sentry_dsn") or None
        for route, dsn in self._routes:
            logger.info("sentry route %s -> %s", route.name, mask_dsn(dsn) if dsn else "nowhere")
        logger.info("sentry default -> %s", mask_dsn(self._default) if self._default else "nowhere")

    @staticmethod
    def _resolve(config, route):
        if route.dsn is None or "://" in route.dsn:
            return route.dsn
        value = config(route.dsn, default=NO_VALUE, raise_error=False,
                       alternate_keys=[f"root:{route.dsn}"])
        if value in (None, NO_VALUE, ""):
            raise ValueError(f"route {route.name!r}: no configuration value for {route.dsn!r}")
        return value

    def pick_dsn(self, raw_crash):
        """``(dsn_name, dsn)`` for this crash, or ``(None, None)`` to send nowhere."""
        raw_crash = with_product_names(raw_crash)
        for route, dsn in self._routes:
            if route.matches(raw_crash):
                return (route.name, dsn) if dsn else (None, None)
        if self._default:
            return ("default", self._default)
        return (None, None)
