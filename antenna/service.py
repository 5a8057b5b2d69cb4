"""Options and set-up shared by every process of the pipeline (collector, processor).

The collector and the processor worker read the same storage and metrics settings,
so they are declared once, here, and both apps inherit them.
"""

import sys

import sentry_sdk
from everett import ConfigurationError
from everett.manager import ChoiceOf, Option, parse_class

from antenna.liblogging import setup_logging
from antenna.sentry import setup_sentry

APP_LOAD_ERROR = 4  # gunicorn halts instead of respawning workers on this exit code


class ServiceBase:
    """Logging, metrics, crash storage and error reporting of one process."""

    class Config:
        logging_level = Option(
            default="INFO",
            parser=ChoiceOf(str, ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]),
            doc="Log level of the antenna and processor loggers.",
        )
        logging_format = Option(
            default="json",
            parser=ChoiceOf(str, ["json", "text"]),
            doc="``json`` (one mozlog object per line) or ``text`` (readable, for development).",
        )
        metrics_class = Option(
            default="antenna.metrics.LoggingMetrics",
            parser=parse_class,
            doc="Metrics backend: ``antenna.metrics.LoggingMetrics`` or ``antenna.metrics.DogStatsdMetrics``.",
        )
        crashstorage_class = Option(
            default="antenna.ext.fs.crashstorage.FSCrashStorage",
            parser=parse_class,
            doc="Crash storage backend; its options are prefixed ``CRASHSTORAGE_``.",
        )
        secret_sentry_dsn = Option(
            default="", doc="Sentry DSN for this service's own errors (not for crashes)."
        )

    def __init__(self, config):
        self.config_manager = config
        self.config = config.with_options(self)
        self.metrics_backend = self.config("metrics_class")(config)
        self.crashstorage = self.config("crashstorage_class")(config.with_namespace("crashstorage"))


def setup_process(config, component_class):
    """Logging and Sentry first, so that even start-up errors are reported."""
    basics = config.with_options(component_class)
    setup_logging(basics("logging_level"), basics("logging_format"))
    setup_sentry(basics("secret_sentry_dsn"), release=None)


def exit_on_startup_error(exc, name):
    """Bad configuration or an unreachable backend: one line on stderr, exit code 4.

    The exception also goes to Sentry when the service's own DSN is configured.
    """
    sentry_sdk.capture_exception(exc)
    sentry_sdk.flush(timeout=5)
    if isinstance(exc, ConfigurationError):
        message = "configuration error: " + " ".join(str(exc).split())
    else:
        message = "start-up failed: " + " ".join(str(exc).split())
    print(f"{name}: {message}", file=sys.stderr, flush=True)
    raise SystemExit(APP_LOAD_ERROR) from None
