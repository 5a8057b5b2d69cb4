"""S3CrashStorage against a real moto server on 127.0.0.1."""

import time

import pytest

from antenna import crashid
from antenna.ext.crashstorage_base import CrashIDNotFound
from antenna.ext.s3.connection import BucketUnavailable
from antenna.ext.s3.crashstorage import S3CrashStorage
from antenna.libconfig import build_config_manager
from testlib.moto import moto_server
from testlib.servers import free_port

DUMP = b"MDMP" + bytes(range(256)) * 8
CRASH_ID = "de1bb258-cbbf-4589-a673-34f800160918"


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    with moto_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


def make_storage(moto, bucket, **env):
    environ = {"CRASHSTORAGE_BUCKET_NAME": bucket, **moto.component_env("CRASHSTORAGE"), **env}
    return S3CrashStorage(build_config_manager(environ).with_namespace("crashstorage"))


@pytest.fixture
def bucket(moto, request):
    return moto.create_bucket(f"crashes-{request.node.name.replace('_', '-')}"[:63])


def test_save_crash_writes_the_design_keys(moto, bucket):
    storage = make_storage(moto, bucket)
    storage.save_crash(
        CRASH_ID,
        {"uuid": CRASH_ID, "ProductName": "App"},
        {"upload_file_minidump": DUMP, "memory_report": b"\x1f\x8bmemory"},
    )
    assert sorted(moto.list_keys(bucket)) == sorted(
        [
            "test/testwrite.txt",  # the start-up write check
            f"v2/raw_crash/de1/20160918/{CRASH_ID}",
            f"v1/dump_names/{CRASH_ID}",
            f"v1/dump/{CRASH_ID}",
            f"v1/memory_report/{CRASH_ID}",
        ]
    )


def test_load_back_and_exists(moto, bucket):
    storage = make_storage(moto, bucket)
    raw_crash = {"uuid": CRASH_ID, "ProductName": "App", "Version": "1.0"}
    storage.save_crash(CRASH_ID, raw_crash, {"upload_file_minidump": DUMP})
    assert storage.crash_exists(CRASH_ID)
    assert storage.load_raw_crash(CRASH_ID) == raw_crash
    assert storage.load_dumps(CRASH_ID) == {"dump": DUMP}
    storage.save_processed_crash(CRASH_ID, {"crash_id": CRASH_ID, "signature": "main"})
    assert storage.load_processed_crash(CRASH_ID)["signature"] == "main"


def test_missing_crash(moto, bucket):
    storage = make_storage(moto, bucket)
    missing = crashid.create_crash_id()
    assert not storage.crash_exists(missing)
    assert not storage.exists(f"v1/dump/{missing}")
    for load in (storage.load_raw_crash, storage.load_dumps, storage.load_processed_crash):
        with pytest.raises(CrashIDNotFound):
            load(missing)
    with pytest.raises(KeyError):
        storage.get(f"v1/dump/{missing}")


def test_dotted_bucket_name_with_endpoint_url_uses_path_style(moto):
    # Virtual-host style would send this to host "crash.data.example.127.0.0.1", which
    # does not resolve; path-style keeps the endpoint host and puts the bucket in the path.
    bucket = moto.create_bucket("crash.data.example")
    storage = make_storage(moto, bucket)
    assert storage.bucket.client.meta.config.s3["addressing_style"] == "path"
    storage.save_crash(CRASH_ID, {"uuid": CRASH_ID}, {"upload_file_minidump": DUMP})
    assert storage.load_dumps(CRASH_ID) == {"dump": DUMP}
    assert f"v1/dump/{CRASH_ID}" in moto.list_keys(bucket)


def test_startup_fails_for_missing_bucket_with_one_line(moto):
    with pytest.raises(BucketUnavailable) as excinfo:
        make_storage(moto, "no-such-bucket")
    message = str(excinfo.value)
    assert "\n" not in message
    assert "'no-such-bucket'" in message
    assert moto.url in message
    assert "head_bucket failed: HTTP 404: Not Found (the bucket does not exist)" in message


def test_startup_fails_fast_for_unreachable_endpoint_with_one_line(moto):
    closed = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(BucketUnavailable) as excinfo:
        make_storage(moto, "crashes", CRASHSTORAGE_ENDPOINT_URL=closed)
    assert time.monotonic() - started < 5
    message = str(excinfo.value)
    assert "\n" not in message
    assert "'crashes'" in message and closed in message
    assert "Could not connect to the endpoint URL" in message


def test_missing_bucket_name_is_a_configuration_error(moto):
    from everett import ConfigurationError

    environ = moto.component_env("CRASHSTORAGE")
    with pytest.raises(ConfigurationError, match="CRASHSTORAGE_BUCKET_NAME"):
        S3CrashStorage(build_config_manager(environ).with_namespace("crashstorage"))


def test_health_check(moto, bucket):
    storage = make_storage(moto, bucket)
    assert storage.check_health() == []
    s3 = moto.client("s3")
    s3.delete_object(Bucket=bucket, Key="test/testwrite.txt")
    s3.delete_bucket(Bucket=bucket)
    problems = storage.check_health()
    assert len(problems) == 1
    assert f"'{bucket}'" in problems[0] and "HTTP 404" in problems[0]
