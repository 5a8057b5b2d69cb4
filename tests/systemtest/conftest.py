import pytest

from testlib.servers import collector_env, gunicorn_collector


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
