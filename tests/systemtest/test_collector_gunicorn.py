"""The collector as operators run it: gunicorn with gevent workers on 127.0.0.1."""

import hashlib
import json
import os
import time

import requests

from antenna.spool import is_manifest
from antenna.storage_keys import raw_crash_key
from testlib.load import submit_many, submit_one
from testlib.multipart import gzip_body, multipart_body


def stored_sha256(root, crash_id):
    path = os.path.join(root, "v1", "dump", crash_id)
    with open(path, "rb") as fp:
        return hashlib.sha256(fp.read()).hexdigest()


def is_stored(root, crash_id):
    return os.path.exists(os.path.join(root, *raw_crash_key(crash_id).split("/")))


def wait_until_stored(root, crash_ids, timeout):
    """The ids not stored after ``timeout`` seconds (checked at least once)."""
    deadline = time.monotonic() + timeout
    missing = {c for c in crash_ids if not is_stored(root, c)}
    while missing and time.monotonic() < deadline:
        time.sleep(0.2)
        missing = {c for c in missing if not is_stored(root, c)}
    return missing


def test_200_concurrent_submissions_all_stored(start_collector, tmp_path):
    server = start_collector(workers=2)
    results = submit_many(server.url + "/submit", count=200, concurrency=200, max_seconds=60)
    assert len(results) == 200
    assert all(r.status == 200 for r in results), {r.text for r in results if r.status != 200}
    root = str(tmp_path / "crashes")
    ids = [r.crash_id for r in results]
    assert len(set(ids)) == 200
    assert wait_until_stored(root, ids, timeout=30) == set()
    for result in results:
        assert stored_sha256(root, result.crash_id) == result.sha256
        with open(os.path.join(root, *raw_crash_key(result.crash_id).split("/"))) as fp:
            assert json.load(fp)["Index"] == str(result.index)


def test_chunked_uploads_are_accepted_and_bad_ones_print_no_traceback(start_collector, tmp_path):
    """libcurl-based reporters upload with Transfer-Encoding: chunked (no Content-Length)."""
    server = start_collector()
    dump = os.urandom(300_000)
    root = str(tmp_path / "crashes")
    for use_gzip in (False, True):
        body, headers = multipart_body({"ProductName": "Chunky", "Version": "1"}, {"upload_file_minidump": dump})
        if use_gzip:
            body, headers = gzip_body(body, headers)
        headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
        response = requests.post(server.url + "/submit", data=chunks, headers=headers, timeout=30)
        assert response.request.headers["Transfer-Encoding"] == "chunked"
        assert response.status_code == 200, response.text
        crash_id = response.text.strip().removeprefix("CrashID=bp-")
        assert wait_until_stored(root, [crash_id], timeout=10) == set()
        assert stored_sha256(root, crash_id) == hashlib.sha256(dump).hexdigest()
        with open(os.path.join(root, *raw_crash_key(crash_id).split("/"))) as fp:
            assert json.load(fp)["metadata"]["payload_size"] == len(body)
    garbage = (part for part in (b"--x\r\nnot a multipart body", b"\r\n--x--\r\n"))
    response = requests.post(
        server.url + "/submit", data=garbage, timeout=30,
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert response.status_code == 400 and response.text.startswith("Discarded=malformed_")
    server.stop()
    with open(server.log_path, encoding="utf-8", errors="replace") as fp:
        assert "Traceback" not in fp.read()


def test_kill9_under_load_loses_no_answered_crash(start_collector, tmp_path):
    """Storage is slow, so crashes are still queued when the whole server is SIGKILLed."""
    env = {
        "CRASHSTORAGE_CLASS": "testlib.slow_storage.SlowFSCrashStorage",
        "CRASHSTORAGE_SAVE_DELAY": "0.5",
        "CONCURRENT_CRASHMOVERS": "2",
        "CRASHMOVER_ADOPT_INTERVAL": "1",
    }
    server = start_collector(workers=2, **env)
    results = submit_many(server.url + "/submit", count=60, concurrency=20, max_seconds=30)
    answered = [r.crash_id for r in results if r.status == 200]
    assert len(answered) == 60
    root = str(tmp_path / "crashes")
    server.kill()  # SIGKILL master and workers: nothing gets to drain
    server.proc.wait(10)
    not_yet = wait_until_stored(root, answered, timeout=0)
    assert not_yet, "test is meaningless unless some crashes were still queued at the kill"

    restarted = start_collector(workers=2, CRASHSTORAGE_CLASS=env["CRASHSTORAGE_CLASS"])
    assert wait_until_stored(root, answered, timeout=60) == set()
    for result in results:
        assert stored_sha256(root, result.crash_id) == result.sha256
    # the server keeps serving after adopting the orphans
    assert submit_one(restarted.url + "/submit", 9999).status == 200


def worker_rss_kb(master_pid):
    total = 0
    children = open(f"/proc/{master_pid}/task/{master_pid}/children").read().split()
    for pid in children:
        with open(f"/proc/{pid}/status") as fp:
            for line in fp:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def test_overload_gets_503_and_rss_stays_flat(start_collector):
    """3x more crash bytes than storage drains: clients get 503 + Retry-After, memory stays put."""
    server = start_collector(
        workers=1,
        CRASHSTORAGE_CLASS="testlib.slow_storage.SlowFSCrashStorage",
        CRASHSTORAGE_SAVE_DELAY="0.2",
        CONCURRENT_CRASHMOVERS="2",
        CRASHMOVER_MAX_QUEUE_BYTES="8mb",
        CRASHMOVER_RETRY_AFTER="3",
    )
    url = server.url + "/submit"
    baseline = worker_rss_kb(server.proc.pid)
    peaks = []
    statuses = []
    for round_index in range(3):
        results = submit_many(
            url, count=100, concurrency=16, max_seconds=30, dump_size=400_000,
            start_index=round_index * 100,
        )
        statuses += [r.status for r in results]
        peaks.append(worker_rss_kb(server.proc.pid))
    assert statuses.count(503) > statuses.count(200) > 0
    assert set(statuses) <= {200, 503}
    refused = submit_one(url, 10_000, dump_size=400_000)
    if refused.status == 503:
        assert refused.text == "Discarded=overloaded"
    # 120 MB were offered; growth must stay within the 8 MB queue + request buffers.
    growth_mb = (max(peaks) - baseline) / 1024
    assert growth_mb < 80, f"RSS grew {growth_mb:.0f} MB (baseline {baseline/1024:.0f} MB)"
    assert peaks[-1] - peaks[0] < 20 * 1024, f"RSS still climbing: {peaks}"


def test_sigterm_drains_queue_then_leaves_the_rest_spooled(start_collector, tmp_path):
    """Graceful stop: the worker saves what it can within SHUTDOWN_TIMEOUT, spools the rest."""
    env = {
        "CRASHSTORAGE_CLASS": "testlib.slow_storage.SlowFSCrashStorage",
        "CRASHSTORAGE_SAVE_DELAY": "0.5",
        "CONCURRENT_CRASHMOVERS": "1",
        "SHUTDOWN_TIMEOUT": "2",
    }
    server = start_collector(**env)
    results = submit_many(server.url + "/submit", count=20, concurrency=10, max_seconds=30)
    answered = [r.crash_id for r in results if r.status == 200]
    assert len(answered) == 20
    root = str(tmp_path / "crashes")
    server.stop()  # SIGTERM to gunicorn, which stops its worker gracefully
    assert server.returncode() == 0
    log = (tmp_path / "gunicorn.log").read_text()
    assert "crashmover stopped; drained=False" in log
    stored_now = len(answered) - len(wait_until_stored(root, answered, timeout=0))
    assert 2 <= stored_now < len(answered), "it should drain some, not all, within 2 s"
    spool_dirs = [p for p in (tmp_path / "spool").iterdir()]
    leftovers = sum(len([c for c in p.iterdir() if is_manifest(c.name)]) for p in spool_dirs)
    assert leftovers == len(answered) - stored_now
    start_collector(CRASHSTORAGE_CLASS=env["CRASHSTORAGE_CLASS"])
    assert wait_until_stored(root, answered, timeout=30) == set()
