import pytest

from testlib.bugsink import REPO_ROOT, Bugsink, BugsinkError, ensure_venv
from testlib.real_crash import RealCrashUnavailable, make_real_crash
from testlib.servers import collector_env, gunicorn_collector

BUGSINK_DATA_DIR = REPO_ROOT / ".cache" / "bugsink-systemtest"


@pytest.fixture(scope="session")
def bugsink():
    """One real Bugsink (its own virtualenv, SQLite) for the whole system-test session."""
    try:
        ensure_venv()
    except BugsinkError as exc:
        pytest.skip(f"cannot create the Bugsink virtualenv (PyPI unreachable?): {exc}")
    server = Bugsink(BUGSINK_DATA_DIR).start()
    yield server
    server.stop()


@pytest.fixture
def start_collector(tmp_path):
    """Start real gunicorn+gevent collectors on 127.0.0.1; all are stopped afterwards."""
    started = []

    def start(workers=1, **env):
        server = gunicorn_collector(
            str(tmp_path), workers=workers, env=collector_env(str(tmp_path), **env)
        )
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def real_crash(tmp_path_factory):
    """One real dump from a program built here with Breakpad's client, and its symbols."""
    try:
        return make_real_crash(tmp_path_factory.mktemp("real-crash"))
    except RealCrashUnavailable as exc:
        pytest.skip(str(exc))
