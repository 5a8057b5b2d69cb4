"""A crash we made ourselves, end to end: Breakpad client → collector → processor → Bugsink.

Unlike the corpus dumps, this one comes from a program built here with Breakpad's client
(testlib/real_crash.py), so its symbols, function names and line numbers are known exactly.
"""

import json
import subprocess
import sys

import pytest
import requests

from processor.stackwalker import DEFAULT_STACKWALKER
from testlib.multipart import multipart_body
from testlib.processed import wait_for_processed
from testlib.real_crash import (
    EXPECTED_FILE,
    EXPECTED_FRAMES,
    REPO_ROOT,
    SOURCE,
)

SAMPLE_DIR = REPO_ROOT / "tests" / "data" / "sample-crash"
ANNOTATIONS = {
    "ProductName": "RealCrash",
    "Version": "3.1.4",
    "ReleaseChannel": "beta",
    "BuildID": "20261129120000",
    "ProcessType": "gpu",
    "Vendor": "ACME",
}

needs_stackwalker = pytest.mark.skipif(
    not DEFAULT_STACKWALKER.exists(),
    reason=f"minidump_stackwalk not found at {DEFAULT_STACKWALKER} (run bin/fetch_stackwalker.sh)",
)


def test_expected_frames_match_the_source():
    """EXPECTED_FRAMES names lines of crash_target.cc: each must hold its call or the write."""
    lines = SOURCE.read_text().splitlines()
    callees = ["*target = 42;"] + [f"{name.split('(')[0]}(" for name, _ in EXPECTED_FRAMES[:-1]]
    for (function, line), callee in zip(EXPECTED_FRAMES, callees, strict=True):
        assert callee in lines[line - 1], (function, line, lines[line - 1])


@needs_stackwalker
def test_real_crash_goes_from_post_to_bugsink(real_crash, start_collector, bugsink, tmp_path):
    server = start_collector(
        workers=1,
        CRASHPUBLISH_CLASS="processor.inprocess.InProcessCrashPublish",
        PROCESSOR_SENTRY_DSN=bugsink.dsn,
        PROCESSOR_SYMBOLS_PATHS=str(real_crash.symbols_dir),
        PROCESSOR_SYMBOLS_CACHE=str(tmp_path / "symcache"),
    )
    body, headers = multipart_body(
        ANNOTATIONS, {"upload_file_minidump": real_crash.dump.read_bytes()}
    )
    resp = requests.post(server.url + "/submit", data=body, headers=headers, timeout=10)
    assert resp.status_code == 200
    crash_id = resp.text.strip().removeprefix("CrashID=bp-")

    processed = wait_for_processed(str(tmp_path / "crashes"), crash_id)
    assert processed["success"], processed["processor_notes"]
    assert processed["signature"] == "crash_here"
    assert processed["reason"] == "SIGSEGV /SEGV_MAPERR" and processed["address"] == "0x0"
    assert processed["sentry"]["status"] == "sent", processed["sentry"]

    data = bugsink.event(processed["sentry"]["event_id"])["data"]
    exception = data["exception"]["values"][0]
    assert exception["type"] == "SIGSEGV /SEGV_MAPERR"
    frames = exception["stacktrace"]["frames"]
    chain = [(f.get("function"), f.get("lineno")) for f in reversed(frames[-len(EXPECTED_FRAMES):])]
    assert chain == list(EXPECTED_FRAMES)
    for frame in frames[-len(EXPECTED_FRAMES):]:
        assert frame["filename"] == EXPECTED_FILE and frame["package"] == "crash_target"
        assert frame["in_app"] is True
    assert data["transaction"] == EXPECTED_FRAMES[0][0]
    images = {image["code_file"]: image for image in data["debug_meta"]["images"]}
    assert images["crash_target"]["debug_id"].replace("-", "").upper() == real_crash.debug_id[:32]
    assert data["release"] == "RealCrash@3.1.4"
    assert data["environment"] == "beta"
    tags = data["tags"]
    assert tags["product"] == "RealCrash" and tags["version"] == "3.1.4"
    assert tags["signature"] == "crash_here" and tags["os"] == "Linux" and tags["cpu"] == "amd64"
    assert tags["ProcessType"] == "gpu" and tags["Vendor"] == "ACME"


@needs_stackwalker
def test_shipped_sample_crash_processes_to_the_expected_frames():
    result = subprocess.run(
        [
            sys.executable, "-m", "processor", "process-file",
            str(SAMPLE_DIR / "crash.dmp"), "--symbols", str(SAMPLE_DIR / "symbols"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    processed = json.loads(result.stdout)
    assert processed["signature"] == "crash_here"
    assert processed["reason"] == "SIGSEGV /SEGV_MAPERR"
    frames = processed["threads"][processed["crashing_thread"]]["frames"]
    chain = [(f["function"], f["line"]) for f in frames[: len(EXPECTED_FRAMES)]]
    assert chain == list(EXPECTED_FRAMES)
    assert {f["file"] for f in frames[: len(EXPECTED_FRAMES)]} == {EXPECTED_FILE}
    assert [f["trust"] for f in frames[:2]] == ["context", "cfi"]
