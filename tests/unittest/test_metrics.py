"""Metrics reach a real DogStatsd listener (a UDP socket on 127.0.0.1) with our names."""

import socket

import pytest

from antenna.libconfig import build_config_manager
from antenna.metrics import DogStatsdMetrics, PrefixedMetrics
from testlib.multipart import multipart_body


@pytest.fixture
def statsd():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    yield sock
    sock.close()


def received(sock, count):
    lines = []
    while len(lines) < count:
        lines.extend(sock.recv(65535).decode().splitlines())
    return lines


def test_dogstatsd_wire_format(statsd):
    port = statsd.getsockname()[1]
    config = build_config_manager(
        {"STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(port), "STATSD_NAMESPACE": "socorro"}
    )
    metrics = PrefixedMetrics(DogStatsdMetrics(config), "collector.crashmover")
    metrics.incr("save_crash.count")
    metrics.gauge("save_queue_size", 3, tags={"host": "a"})
    with metrics.timer("crash_save.time"):
        pass
    lines = received(statsd, 3)
    assert lines[0] == "socorro.collector.crashmover.save_crash.count:1|c"
    assert lines[1] == "socorro.collector.crashmover.save_queue_size:3|g|#host:a"
    assert lines[2].startswith("socorro.collector.crashmover.crash_save.time:")
    assert lines[2].endswith("|ms")


def test_collector_emits_the_documented_names(make_collector, statsd):
    port = statsd.getsockname()[1]
    collector = make_collector(
        METRICS_CLASS="antenna.metrics.DogStatsdMetrics", STATSD_HOST="127.0.0.1", STATSD_PORT=str(port)
    )
    body, headers = multipart_body({"ProductName": "App"}, {"upload_file_minidump": b"MDMP"})
    assert collector.post(body, headers).status_code == 200
    collector.drain()
    names = {line.split(":")[0] for line in received(statsd, 8)}
    assert {
        "collector.breakpad_resource.incoming_crash",
        "collector.breakpad_resource.throttle.accept",
        "collector.breakpad_resource.on_post.time",
        "collector.crashmover.save_queue_size",
        "collector.crashmover.crash_save.time",
        "collector.crashmover.save_crash.count",
        "collector.crashmover.crash_handling.time",
    } <= names
