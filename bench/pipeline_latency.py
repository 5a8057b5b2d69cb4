"""Time from POST /submit to the event being visible in a Sentry-compatible UI (Bugsink).

The one-box deployment of ``make run``: a real Bugsink, the collector under gunicorn +
gevent with the in-process processor, filesystem storage, the shipped sample crash and
its symbols.  Crashes are sent one at a time (a developer's view: "how long until I see
it?"), bounded in count and time.  Prints p50/p90/max; asserts nothing.

    .venv/bin/python -m bench.pipeline_latency [--crashes 20]
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

from testlib.bugsink import Bugsink
from testlib.multipart import multipart_body
from testlib.servers import REPO_ROOT, collector_env, gunicorn_collector

SAMPLE = Path(REPO_ROOT) / "tests" / "data" / "sample-crash"
ANNOTATIONS = {"ProductName": "LatencyBench", "Version": "1.0", "ReleaseChannel": "bench"}


def event_visible(bugsink, event_id):
    try:
        bugsink.event(event_id)
        return True
    except requests.HTTPError:
        return False


def measure(url, bugsink, dump, count, timeout):
    seconds = []
    for _ in range(count):
        body, headers = multipart_body(ANNOTATIONS, {"upload_file_minidump": dump})
        start = time.monotonic()
        resp = requests.post(url, data=body, headers=headers, timeout=10)
        crash_id = resp.text.strip().removeprefix("CrashID=bp-")
        event_id = crash_id.replace("-", "")
        deadline = start + timeout
        while not event_visible(bugsink, event_id):
            if time.monotonic() > deadline:
                raise SystemExit(f"crash {crash_id} not visible within {timeout}s")
            time.sleep(0.02)
        seconds.append(time.monotonic() - start)
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crashes", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=30, help="per crash")
    args = parser.parse_args(argv)
    dump = (SAMPLE / "crash.dmp").read_bytes()
    with tempfile.TemporaryDirectory(prefix="pipeline-latency-") as tmp:
        bugsink = Bugsink(Path(REPO_ROOT) / ".cache" / "bugsink-bench").start()
        env = collector_env(
            tmp,
            LOGGING_LEVEL="WARNING",
            CRASHPUBLISH_CLASS="processor.inprocess.InProcessCrashPublish",
            PROCESSOR_SENTRY_DSN=bugsink.dsn,
            PROCESSOR_SYMBOLS_PATHS=str(SAMPLE / "symbols"),
            PROCESSOR_SYMBOLS_CACHE=f"{tmp}/symcache",
            GUNICORN_ACCESS_LOG="",
        )
        collector = gunicorn_collector(tmp, env=env).start()
        try:
            seconds = measure(collector.url + "/submit", bugsink, dump, args.crashes, args.timeout)
        finally:
            collector.stop()
            bugsink.stop()
    ms = sorted(s * 1000 for s in seconds)
    print(f"POST -> event visible in Bugsink, {len(ms)} crashes sent one at a time:")
    print(f"  p50 {statistics.median(ms):.0f} ms   p90 {ms[int(0.9 * (len(ms) - 1))]:.0f} ms   "
          f"min {ms[0]:.0f} ms   max {ms[-1]:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
