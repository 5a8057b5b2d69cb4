"""The collector's WSGI application: ``gunicorn --worker-class gevent antenna.app:application``.

``application`` is built lazily on first access, so gunicorn builds it inside each
worker after gevent has patched the process, and importing this module stays cheap.
"""

import atexit
import logging
import os

import falcon
from everett.manager import Option, parse_bool, parse_class

from antenna.breakpad_resource import BreakpadSubmitterResource
from antenna.crashmover import CrashMover
from antenna.health_resource import (
    BrokenResource,
    HeartbeatResource,
    LBHeartbeatResource,
    VersionResource,
)
from antenna.libconfig import build_config_manager, runtime_config_lines, verify_options
from antenna.metrics import PrefixedMetrics
from antenna.service import ServiceBase, exit_on_startup_error, setup_process
from antenna.throttler import Throttler

LOGGER = logging.getLogger(__name__)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class AntennaApp(ServiceBase):
    """Top-level settings and the component tree of one collector process."""

    class Config:
        basedir = Option(default=REPO_ROOT, doc="Folder holding ``version.json``.")
        crashpublish_class = Option(
            default="antenna.ext.crashpublish_base.NoOpCrashPublish",
            parser=parse_class,
            doc="Where ids of saved ACCEPTed crashes go; options prefixed ``CRASHPUBLISH_``.",
        )
        broken_enabled = Option(
            default="false", parser=parse_bool, doc="Enable ``/__broken__`` (it raises)."
        )
        shutdown_timeout = Option(
            default="20",
            parser=float,
            doc=(
                "Seconds a stopping worker spends draining its save queue; keep it below "
                "gunicorn's graceful timeout. What is left stays spooled for the next worker."
            ),
        )

    def __init__(self, config):
        super().__init__(config)
        backend = self.metrics_backend
        self.crashpublish = self.config("crashpublish_class")(config.with_namespace("crashpublish"))
        if hasattr(self.crashpublish, "setup"):
            self.crashpublish.setup(config, self.crashstorage, backend)
        self.throttler = Throttler(config)
        self.crashmover = CrashMover(
            config,
            self.crashstorage,
            self.crashpublish,
            PrefixedMetrics(backend, "collector.crashmover"),
        )
        self.breakpad = BreakpadSubmitterResource(
            config,
            self.throttler,
            self.crashmover,
            self.crashstorage,
            PrefixedMetrics(backend, "collector.breakpad_resource"),
        )
        verify_options(config, self.components())

    def components(self):
        """(namespace, component) pairs, for logging and documenting the config."""
        return [
            ([], self),
            ([], self.metrics_backend),
            (["crashstorage"], self.crashstorage),
            (["crashpublish"], self.crashpublish),
            ([], self.throttler),
            ([], self.crashmover),
            ([], self.breakpad),
        ]

    def build_falcon_app(self):
        app = falcon.App()
        app.req_options.auto_parse_form_urlencoded = False
        app.add_route("/submit", self.breakpad)
        app.add_route("/__lbheartbeat__", LBHeartbeatResource())
        app.add_route(
            "/__heartbeat__",
            HeartbeatResource(
                {
                    "crashstorage": self.crashstorage,
                    "crashpublish": self.crashpublish,
                    "crashmover": self.crashmover,
                }
            ),
        )
        app.add_route("/__version__", VersionResource(self.config("basedir")))
        app.add_route("/__broken__", BrokenResource(self.config("broken_enabled")))
        return app

    def log_config(self):
        for line in runtime_config_lines(self.config_manager, self.components()):
            LOGGER.info("config: %s", line)

    def start(self):
        self.crashmover.start()

    def shutdown(self):
        self.crashmover.shutdown(self.config("shutdown_timeout"))


def build_app(config=None):
    """Build, start and return ``(AntennaApp, falcon_app)``; exit with one line on bad config."""
    config = config or build_config_manager()
    try:
        setup_process(config, AntennaApp)
        antenna_app = AntennaApp(config)
        antenna_app.log_config()
        antenna_app.start()
    except Exception as exc:
        exit_on_startup_error(exc, "antenna")
    return antenna_app, antenna_app.build_falcon_app()


_STATE = {}


def get_application():
    """The process-wide WSGI app, built on first use; drains the spool queue at exit."""
    if "wsgi" not in _STATE:
        antenna_app, wsgi = build_app()
        _STATE.update(antenna=antenna_app, wsgi=wsgi)
        atexit.register(antenna_app.shutdown)
    return _STATE["wsgi"]


def __getattr__(name):
    if name == "application":
        return get_application()
    raise AttributeError(name)
