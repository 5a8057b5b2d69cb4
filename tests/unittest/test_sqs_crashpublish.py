"""SQSCrashPublish against a real moto server on 127.0.0.1."""

import pytest
from everett import ConfigurationError

from antenna import crashid
from antenna.ext.sqs.crashpublish import QueueUnavailable, SQSCrashPublish
from antenna.libconfig import build_config_manager
from testlib.moto import moto_server


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    with moto_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


def make_publisher(moto, **env):
    environ = {**moto.component_env("CRASHPUBLISH"), **env}
    return SQSCrashPublish(build_config_manager(environ).with_namespace("crashpublish"))


def test_publish_by_queue_url(moto):
    queue_url = moto.create_queue("crashes-by-url")
    publisher = make_publisher(moto, CRASHPUBLISH_QUEUE_URL=queue_url)
    crash_ids = [crashid.create_crash_id() for _ in range(3)]
    for crash_id in crash_ids:
        publisher.publish(crash_id)
    assert sorted(moto.receive_all(queue_url)) == sorted(crash_ids)


def test_publish_by_queue_name(moto):
    queue_url = moto.create_queue("crashes-by-name")
    publisher = make_publisher(moto, CRASHPUBLISH_QUEUE_NAME="crashes-by-name")
    assert publisher.queue_url == queue_url
    crash_id = crashid.create_crash_id()
    publisher.publish(crash_id)
    assert moto.receive_all(queue_url) == [crash_id]


@pytest.mark.parametrize(
    "env",
    [
        {"CRASHPUBLISH_QUEUE_NAME": "no-such-queue"},
        {"CRASHPUBLISH_QUEUE_URL": "http://127.0.0.1/123456789012/no-such-queue"},
    ],
)
def test_startup_fails_for_missing_queue_with_one_line(moto, env):
    with pytest.raises(QueueUnavailable) as excinfo:
        make_publisher(moto, **env)
    message = str(excinfo.value)
    assert "\n" not in message
    assert "no-such-queue" in message
    assert moto.url in message
    assert "NonExistentQueue" in message


def test_queue_is_required():
    with pytest.raises(ConfigurationError, match="CRASHPUBLISH_QUEUE_URL or CRASHPUBLISH_QUEUE_NAME"):
        SQSCrashPublish(build_config_manager({}).with_namespace("crashpublish"))


def test_health_check(moto):
    queue_url = moto.create_queue("crashes-health")
    publisher = make_publisher(moto, CRASHPUBLISH_QUEUE_URL=queue_url)
    assert publisher.check_health() == []
    moto.client("sqs").delete_queue(QueueUrl=queue_url)
    problems = publisher.check_health()
    assert len(problems) == 1
    assert "crashes-health" in problems[0]
