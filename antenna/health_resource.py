"""Dockerflow endpoints: what load balancers and operators poll."""

import json
import logging
import os

LOGGER = logging.getLogger(__name__)


class LBHeartbeatResource:
    """``/__lbheartbeat__``: the process answers HTTP; nothing else is checked."""

    def on_get(self, req, resp):
        resp.content_type = "application/json"
        resp.text = "{}"


class HeartbeatResource:
    """``/__heartbeat__``: storage, publisher and spool health; 500 when any fails."""

    def __init__(self, components):
        self.components = components

    def on_get(self, req, resp):
        checks = {}
        for name, component in self.components.items():
            try:
                problems = component.check_health()
            except Exception as exc:
                problems = [f"health check raised {exc!r}"]
            checks[name] = {"status": "ok" if not problems else "error", "problems": problems}
        healthy = all(c["status"] == "ok" for c in checks.values())
        resp.status = "200 OK" if healthy else "500 Internal Server Error"
        resp.content_type = "application/json"
        resp.text = json.dumps({"status": "ok" if healthy else "error", "checks": checks})


class VersionResource:
    """``/__version__``: the ``version.json`` written at build time (commit, version, ...)."""

    def __init__(self, basedir):
        self.path = os.path.join(basedir, "version.json")

    def on_get(self, req, resp):
        resp.content_type = "application/json"
        try:
            with open(self.path) as fp:
                resp.text = fp.read()
        except FileNotFoundError:
            resp.text = "{}"


class BrokenResource:
    """``/__broken__``: raises, to prove error reporting works; 404 unless enabled."""

    def __init__(self, enabled):
        self.enabled = enabled

    def on_get(self, req, resp):
        if not self.enabled:
            resp.status = "404 Not Found"
            resp.content_type = "text/plain"
            resp.text = "Not Found\n"
            return
        raise RuntimeError("intentional exception from /__broken__")
