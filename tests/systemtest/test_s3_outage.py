"""Fault test: S3 dies for 10 s under load; no answered crash is lost, duplicated or unpublished.

A real gunicorn + gevent collector stores crashes in a moto S3 server and publishes
ids to a second moto server (SQS), which stays up.  While a few client threads post
crashes, the S3 server is killed with SIGKILL (its port refuses connections) and,
10 s later, started again on the same port.  moto holds its state in memory, so the
S3 server runs moto's request recorder and replays it on restart (see
``testlib.moto``): the restarted server holds exactly what the killed one had, as a
restarted S3 would.  The crashes answered during the outage wait in the spool and
the crashmovers' retries deliver them once S3 is back.
"""

import collections
import hashlib
import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from antenna import crashid, storage_keys
from antenna.spool import is_manifest
from testlib.moto import moto_server
from testlib.multipart import multipart_body
from testlib.servers import collector_env, gunicorn_collector

BUCKET = "antenna.crashes"  # dotted: exercises path-style addressing end to end
SENDERS = 4
MAX_CRASHES = 300
SEND_SECONDS = 24
SEND_PAUSE = 0.4
OUTAGE_AT = 6
OUTAGE_SECONDS = 10
DRAIN_SECONDS = 60


def s3_collector_env(tmp_dir, s3, sqs, queue_url, **overrides):
    return collector_env(
        tmp_dir,
        CRASHSTORAGE_CLASS="antenna.ext.s3.crashstorage.S3CrashStorage",
        CRASHSTORAGE_BUCKET_NAME=BUCKET,
        **s3.component_env("CRASHSTORAGE"),
        CRASHPUBLISH_CLASS="antenna.ext.sqs.crashpublish.SQSCrashPublish",
        CRASHPUBLISH_QUEUE_URL=queue_url,
        **sqs.component_env("CRASHPUBLISH"),
        CRASHMOVER_RETRY_MAX_SLEEP="1",
        **overrides,
    )


class Sender:
    """Client threads posting small crashes until a count or a deadline is reached."""

    def __init__(self, url, deadline):
        self.url = url
        self.deadline = deadline
        self.lock = threading.Lock()
        self.sent = 0
        self.answered = {}  # crash id -> (sha256 of the dump, monotonic time answered)
        self.failures = []  # (status or exception, text)

    def claim(self):
        with self.lock:
            if self.sent >= MAX_CRASHES or time.monotonic() >= self.deadline:
                return False
            self.sent += 1
            return True

    def run(self):
        rng = random.Random()
        while self.claim():
            dump = b"MDMP" + rng.randbytes(rng.randint(2000, 4000))
            body, headers = multipart_body(
                {"ProductName": "OutageApp", "Version": "1.0"}, {"upload_file_minidump": dump}
            )
            try:
                resp = requests.post(self.url + "/submit", data=body, headers=headers, timeout=10)
            except requests.RequestException as exc:
                self.failures.append((repr(exc), ""))
                continue
            if resp.status_code != 200:
                self.failures.append((resp.status_code, resp.text))
                continue
            crash_id = resp.text.strip()[len("CrashID=bp-") :]
            with self.lock:
                self.answered[crash_id] = (hashlib.sha256(dump).hexdigest(), time.monotonic())
            time.sleep(SEND_PAUSE)


def spooled_files(tmp_dir):
    return [
        name
        for _, _, names in os.walk(os.path.join(tmp_dir, "spool"))
        for name in names
        if is_manifest(name)
    ]


def raw_crash_ids(s3):
    return [key.rsplit("/", 1)[1] for key in s3.list_keys(BUCKET, prefix="v2/raw_crash/")]


@pytest.fixture
def moto_pair(tmp_path):
    with (
        moto_server(tmp_path, name="moto-s3", persistent=True) as s3,
        moto_server(tmp_path, name="moto-sqs") as sqs,
    ):
        s3.create_bucket(BUCKET)
        yield s3, sqs, sqs.create_queue("antenna-crashes")


def test_s3_outage_loses_nothing(tmp_path, moto_pair):
    s3, sqs, queue_url = moto_pair
    tmp_dir = str(tmp_path)
    collector = gunicorn_collector(
        tmp_dir, workers=2, env=s3_collector_env(tmp_dir, s3, sqs, queue_url)
    ).start()
    try:
        started = time.monotonic()
        sender = Sender(collector.url, started + SEND_SECONDS)
        threads = [threading.Thread(target=sender.run) for _ in range(SENDERS)]
        for thread in threads:
            thread.start()

        time.sleep(OUTAGE_AT)
        s3.crash()
        outage_start = time.monotonic()
        heartbeat_down = requests.get(collector.url + "/__heartbeat__", timeout=10)
        time.sleep(OUTAGE_SECONDS - (time.monotonic() - outage_start))
        outage_end = time.monotonic()
        replay_seconds = s3.restart()

        for thread in threads:
            thread.join()
        sending_done = time.monotonic()

        published = []
        while time.monotonic() < sending_done + DRAIN_SECONDS:
            published.extend(sqs.receive_all(queue_url))
            if (
                set(raw_crash_ids(s3)) >= set(sender.answered)
                and set(published) >= set(sender.answered)
                and not spooled_files(tmp_dir)
            ):
                break
            time.sleep(0.5)
        drained = time.monotonic()
        published.extend(sqs.receive_all(queue_url))
        heartbeat_up = requests.get(collector.url + "/__heartbeat__", timeout=10)
    finally:
        collector.stop()
    stopped = time.monotonic()

    answered = sender.answered
    during_outage = [cid for cid, (_, at) in answered.items() if outage_start <= at <= outage_end]
    with open(os.path.join(tmp_dir, "gunicorn.log")) as fp:
        save_retries = sum("save failed" in line for line in fp)
    print(
        f"\nsent={sender.sent} answered={len(answered)} failures={len(sender.failures)} "
        f"answered_during_outage={len(during_outage)} save_retries_logged={save_retries} "
        f"replay={replay_seconds:.1f}s drain_after_sending={drained - sending_done:.1f}s "
        f"published={len(published)} sending_to_drained={drained - started:.1f}s "
        f"collector_stop={stopped - drained:.1f}s"
    )

    assert sender.failures == []
    assert len(answered) >= 100
    assert during_outage, "the collector must keep answering while S3 is down"
    assert save_retries > 0, "the outage never hit a save: the test proved nothing"
    assert heartbeat_down.status_code == 500
    assert heartbeat_down.json()["checks"]["crashstorage"]["status"] == "error"
    assert heartbeat_up.status_code == 200, heartbeat_up.text

    # Every answered crash is stored exactly once, and nothing else is.
    stored = collections.Counter(raw_crash_ids(s3))
    assert set(stored) == set(answered)
    assert max(stored.values()) == 1
    keys = set(s3.list_keys(BUCKET))
    expected_keys = {"test/testwrite.txt"}
    for crash_id in answered:
        expected_keys |= {
            storage_keys.raw_crash_key(crash_id),
            storage_keys.dump_names_key(crash_id),
            storage_keys.dump_key(crash_id, "upload_file_minidump"),
        }
    assert keys == expected_keys

    # With the right content (fetched in parallel: moto answers one request in ~15 ms).
    client = s3.client("s3")

    def stored_checksums(crash_id):
        dump = client.get_object(Bucket=BUCKET, Key=f"v1/dump/{crash_id}")["Body"].read()
        raw_key = storage_keys.raw_crash_key(crash_id)
        raw = json.loads(client.get_object(Bucket=BUCKET, Key=raw_key)["Body"].read())
        return hashlib.sha256(dump).hexdigest(), raw["dump_checksums"]["upload_file_minidump"]

    with ThreadPoolExecutor(8) as pool:
        checksums = dict(zip(answered, pool.map(stored_checksums, answered), strict=True))
    for crash_id, (sha256, _) in answered.items():
        assert checksums[crash_id] == (sha256, sha256), crash_id

    # Every ACCEPTed id was published (at least once), and only those.
    accepted = {cid for cid in answered if crashid.throttle_digit(cid) == 0}
    assert set(published) == accepted
    assert spooled_files(tmp_dir) == []


def test_collector_refuses_to_start_without_its_bucket(tmp_path):
    tmp_dir = str(tmp_path)
    with moto_server(tmp_path, name="moto") as moto:
        queue_url = moto.create_queue("antenna-crashes")
        env = s3_collector_env(tmp_dir, moto, moto, queue_url)
        collector = gunicorn_collector(tmp_dir, env=env)
        with pytest.raises(RuntimeError, match="exited with 4"):
            collector.start(timeout=30)
        collector.stop()
    with open(os.path.join(tmp_dir, "gunicorn.log")) as fp:
        lines = [line for line in fp if line.startswith("antenna: start-up failed:")]
    expected = (
        f"antenna: start-up failed: S3 bucket '{BUCKET}' at {moto.url}: head_bucket failed: "
        "HTTP 404: Not Found (the bucket does not exist)\n"
    )
    assert lines == [expected]
