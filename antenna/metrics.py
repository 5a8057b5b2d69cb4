"""Metrics backends selected by ``METRICS_CLASS``.

Both expose the same four calls so code never cares where numbers go:
``incr``, ``gauge``, ``timing`` (milliseconds) and the ``timer`` context manager.
"""

import contextlib
import logging
import time

from everett.manager import Option

LOGGER = logging.getLogger(__name__)


class MetricsBase:
    """Common helpers; subclasses implement ``emit``."""

    def emit(self, kind, name, value, tags):
        raise NotImplementedError

    def incr(self, name, value=1, tags=None):
        self.emit("incr", name, value, tags)

    def gauge(self, name, value, tags=None):
        self.emit("gauge", name, value, tags)

    def timing(self, name, value_ms, tags=None):
        self.emit("timing", name, value_ms, tags)

    @contextlib.contextmanager
    def timer(self, name, tags=None):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timing(name, (time.perf_counter() - start) * 1000.0, tags)

    def check_health(self):
        return []


class LoggingMetrics(MetricsBase):
    """Development backend: metrics become debug log lines."""

    class Config:
        pass

    def __init__(self, config):
        self.config = config.with_options(self)

    def emit(self, kind, name, value, tags):
        LOGGER.debug("metric %s %s %s %s", kind, name, value, tags or "")


class DogStatsdMetrics(MetricsBase):
    """Production backend: DogStatsd over UDP through the ``datadog`` library."""

    class Config:
        statsd_host = Option(default="localhost", doc="Host of the DogStatsd daemon.")
        statsd_port = Option(default="8125", parser=int, doc="UDP port of the DogStatsd daemon.")
        statsd_namespace = Option(
            default="", doc="Prefix for every metric name, e.g. ``socorro``."
        )

    def __init__(self, config):
        from datadog.dogstatsd import DogStatsd

        self.config = config.with_options(self)
        self.client = DogStatsd(
            host=self.config("statsd_host"),
            port=self.config("statsd_port"),
            namespace=self.config("statsd_namespace") or None,
        )

    def emit(self, kind, name, value, tags):
        tag_list = [f"{k}:{v}" for k, v in (tags or {}).items()]
        if kind == "incr":
            self.client.increment(name, value, tags=tag_list)
        elif kind == "gauge":
            self.client.gauge(name, value, tags=tag_list)
        else:
            self.client.timing(name, value, tags=tag_list)


class PrefixedMetrics:
    """A view on a backend that prefixes names, so each module names its own metrics."""

    def __init__(self, backend, prefix):
        self.backend = backend
        self.prefix = prefix

    def incr(self, name, value=1, tags=None):
        self.backend.incr(f"{self.prefix}.{name}", value, tags)

    def gauge(self, name, value, tags=None):
        self.backend.gauge(f"{self.prefix}.{name}", value, tags)

    def timing(self, name, value_ms, tags=None):
        self.backend.timing(f"{self.prefix}.{name}", value_ms, tags)

    def timer(self, name, tags=None):
        return self.backend.timer(f"{self.prefix}.{name}", tags)
