"""Scale-out with a real crash: collector → S3 + SQS (moto server) → processor worker → Bugsink."""

import json
import subprocess
import sys
import time

import pytest
import requests

from antenna.storage_keys import processed_crash_key, raw_crash_key
from testlib.moto import moto_server
from testlib.multipart import multipart_body
from testlib.real_crash import EXPECTED_FRAMES
from testlib.servers import REPO_ROOT, collector_env

BUCKET = "crashes"


@pytest.fixture
def moto(tmp_path):
    with moto_server(tmp_path) as server:
        yield server


def get_json(moto, key):
    try:
        body = moto.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    except moto.client("s3").exceptions.NoSuchKey:
        return None
    return json.loads(body)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not seen within {timeout}s")


def post(url, annotations, dump):
    body, headers = multipart_body(annotations, {"upload_file_minidump": dump})
    resp = requests.post(url + "/submit", data=body, headers=headers, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.text.strip().removeprefix("CrashID=bp-")


def test_sqs_worker_processes_accepted_crashes_only(
    start_collector, moto, bugsink, real_crash, tmp_path
):
    moto.create_bucket(BUCKET)
    queue_url = moto.create_queue("crash-ids")
    aws = {
        "CRASHSTORAGE_CLASS": "antenna.ext.s3.crashstorage.S3CrashStorage",
        "CRASHSTORAGE_BUCKET_NAME": BUCKET,
        **moto.component_env("CRASHSTORAGE"),
        "CRASHPUBLISH_CLASS": "antenna.ext.sqs.crashpublish.SQSCrashPublish",
        "CRASHPUBLISH_QUEUE_URL": queue_url,
        **moto.component_env("CRASHPUBLISH"),
    }
    collector = start_collector(workers=2, **aws)
    worker_env = collector_env(
        str(tmp_path),
        **aws,
        PROCESSOR_SENTRY_DSN=bugsink.dsn,
        PROCESSOR_SYMBOLS_PATHS=str(real_crash.symbols_dir),
        PROCESSOR_SYMBOLS_CACHE=str(tmp_path / "symcache"),
        PROCESSOR_WORKER_WAIT_SECONDS="1",
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "processor", "worker"],
        env=worker_env, cwd=REPO_ROOT,
        stdout=open(tmp_path / "worker.log", "wb"), stderr=subprocess.STDOUT,
    )
    try:
        dump = real_crash.dump.read_bytes()
        annotations = {"ProductName": "ScaleOut", "Version": "7.1", "ReleaseChannel": "release"}
        accepted = post(collector.url, annotations, dump)
        deferred_id = "dddddddd-cbbf-4589-a673-34f801261129"
        deferred = post(collector.url, {"ProductName": "ScaleOut", "crash_id": deferred_id}, dump)
        assert deferred == deferred_id

        processed = wait_for(
            lambda: get_json(moto, processed_crash_key(accepted)),
            60, "processed crash in S3",
        )
        assert processed["signature"] == "crash_here"
        assert processed["sentry"]["status"] == "sent"
        data = bugsink.event(processed["sentry"]["event_id"])["data"]
        assert data["release"] == "ScaleOut@7.1"
        frames = data["exception"]["values"][0]["stacktrace"]["frames"]
        top = [(f["function"], f["lineno"]) for f in reversed(frames[-len(EXPECTED_FRAMES):])]
        assert top == list(EXPECTED_FRAMES)

        assert get_json(moto, raw_crash_key(deferred_id))["legacy_processing"] == 1
        time.sleep(2)  # give the worker every chance to (wrongly) process the DEFERred crash
        assert get_json(moto, processed_crash_key(deferred_id)) is None
        attributes = moto.client("sqs").get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        assert attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
    finally:
        worker.terminate()
        returncode = worker.wait(20)
    assert returncode == 0, "SIGTERM should stop the worker cleanly"
    log = (tmp_path / "worker.log").read_text()
    assert accepted in log
