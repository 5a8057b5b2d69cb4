"""Shared fixtures: an in-process collector with filesystem storage in a temp dir."""

import os
import sys

import pytest
from falcon import testing

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from antenna.app import AntennaApp  # noqa: E402
from antenna.libconfig import build_config_manager  # noqa: E402
from testlib.fake_sentry import FakeSentry  # noqa: E402


class Collector:
    """An AntennaApp with a Falcon test client; ``stop()`` drains and closes it."""

    def __init__(self, tmp_path, **env):
        self.env = {
            "CRASHSTORAGE_FS_ROOT": str(tmp_path / "crashes"),
            "CRASHMOVER_SPOOL_DIR": str(tmp_path / "spool"),
            "CRASHMOVER_RETRY_MAX_SLEEP": "0.2",
            "LOGGING_FORMAT": "text",
            **env,
        }
        self.app = AntennaApp(build_config_manager(self.env))
        self.app.start()
        self.client = testing.TestClient(self.app.build_falcon_app())

    def post(self, body, headers):
        return self.client.simulate_post("/submit", body=body, headers=headers)

    def drain(self, timeout=10):
        assert self.app.crashmover.join(timeout), "crashmover did not drain"

    def stop(self):
        self.app.crashmover.shutdown(2)


@pytest.fixture
def make_collector(tmp_path):
    made = []

    def factory(**env):
        collector = Collector(tmp_path, **env)
        made.append(collector)
        return collector

    yield factory
    for collector in made:
        collector.stop()


@pytest.fixture
def collector(make_collector):
    return make_collector()


@pytest.fixture
def sentry():
    """A scriptable Sentry stand-in on 127.0.0.1 that records the envelopes it gets."""
    server = FakeSentry().start()
    yield server
    server.stop()
