"""A real moto server (S3, SQS, ...) on 127.0.0.1 for tests, with bucket and queue helpers.

Usage in a test module::

    from testlib.moto import moto_server

    @pytest.fixture(scope="module")
    def moto(tmp_path_factory):
        with moto_server(tmp_path_factory.mktemp("moto")) as server:
            yield server

    def test_something(moto):
        moto.create_bucket("crashes")
        storage = S3CrashStorage(config(CRASHSTORAGE_ENDPOINT_URL=moto.url, ...))

moto keeps its state in memory, so a plain restart comes back empty.  A server made
with ``persistent=True`` runs moto's request recorder (``MOTO_ENABLE_RECORDING``):
every request is appended to a file in ``tmp_dir`` and, after ``restart()``, replayed
into the new process on the same port.  That gives a real outage (the process is
killed, the port refuses connections) followed by a server that still holds every
object written before it died, which is what a stopped-then-restarted S3 looks like.
"""

import contextlib
import os
import signal
import time

import boto3
import requests
from botocore.config import Config

from testlib.servers import VENV_BIN, ServerProcess, free_port

REGION = "us-east-1"
ACCESS_KEY = "testing"
SECRET_ACCESS_KEY = "testing"


class MotoServer(ServerProcess):
    """``moto_server -H 127.0.0.1 -p PORT`` as a child process, log in ``tmp_dir``."""

    def __init__(self, tmp_dir, port=None, name="moto", persistent=False):
        port = port or free_port()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
        }
        self.persistent = persistent
        if persistent:
            env["MOTO_ENABLE_RECORDING"] = "True"
            env["MOTO_RECORDER_FILEPATH"] = os.path.join(str(tmp_dir), f"{name}-recording.jsonl")
        super().__init__(
            [os.path.join(VENV_BIN, "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            port,
            env=env,
            log_path=os.path.join(str(tmp_dir), f"{name}.log"),
            ready_path="/moto-api/",
        )

    def client(self, service_name):
        return boto3.client(
            service_name,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            config=Config(s3={"addressing_style": "path"}),
        )

    def component_env(self, prefix):
        """Collector environment variables pointing a ``prefix`` component at this server."""
        return {
            f"{prefix}_ENDPOINT_URL": self.url,
            f"{prefix}_REGION": REGION,
            f"{prefix}_ACCESS_KEY": ACCESS_KEY,
            f"{prefix}_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        }

    def create_bucket(self, name):
        self.client("s3").create_bucket(Bucket=name)
        return name

    def create_queue(self, name):
        """Create a queue and return its URL."""
        return self.client("sqs").create_queue(QueueName=name)["QueueUrl"]

    def list_keys(self, bucket, prefix=""):
        pages = self.client("s3").get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix
        )
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

    def receive_all(self, queue_url, idle_rounds=2):
        """Bodies of every message in the queue (deleting them), until it stays empty."""
        sqs = self.client("sqs")
        bodies, empty = [], 0
        while empty < idle_rounds:
            messages = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                empty += 1
                continue
            empty = 0
            bodies.extend(message["Body"] for message in messages)
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(messages)
                ],
            )
        return bodies

    def crash(self):
        """Kill the server at once (no graceful shutdown); its port refuses connections."""
        self.kill(signal.SIGKILL)
        self.proc.wait(10)

    def restart(self, timeout=30):
        """Start again on the same port; a persistent server replays its recorded requests."""
        self.stop()
        self.start(timeout=timeout)
        if self.persistent:
            started = time.monotonic()
            resp = requests.post(self.url + "/moto-api/recorder/replay-recording", timeout=300)
            resp.raise_for_status()
            return time.monotonic() - started
        return 0.0


@contextlib.contextmanager
def moto_server(tmp_dir, **kwargs):
    """A started ``MotoServer``, stopped on exit."""
    server = MotoServer(tmp_dir, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()
