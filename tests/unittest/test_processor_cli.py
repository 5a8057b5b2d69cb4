"""``python -m processor process|reprocess`` against filesystem storage, as an operator runs them."""

import json
import os
import subprocess
import sys

import pytest

from antenna.ext.fs.crashstorage import FSCrashStorage
from antenna.libconfig import build_config_manager
from testlib.servers import REPO_ROOT
from tests.corpus import CORPUS_DIR

DUMP = CORPUS_DIR / "generated" / "breakpad_segv.dmp"
IDS = ["aaaaaaaa-cbbf-4589-a673-34f800160918", "bbbbbbbb-cbbf-4589-a673-34f800160918"]

pytestmark = pytest.mark.skipif(not DUMP.exists(), reason=f"corpus not found at {CORPUS_DIR}")


@pytest.fixture
def env(tmp_path):
    values = {
        "CRASHSTORAGE_FS_ROOT": str(tmp_path / "crashes"),
        "PROCESSOR_SYMBOLS_PATHS": str(CORPUS_DIR / "generated" / "symbols"),
        "PROCESSOR_SYMBOLS_CACHE": str(tmp_path / "symcache"),
        "LOGGING_LEVEL": "WARNING",
    }
    storage = FSCrashStorage(build_config_manager(values).with_namespace("crashstorage"))
    for crash_id in IDS:
        storage.save_crash(crash_id, {"ProductName": "Cli", "uuid": crash_id}, {"upload_file_minidump": DUMP.read_bytes()})
    return dict(os.environ, PYTHONPATH=REPO_ROOT, **values), storage


def run(args, env, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "processor", *args], env=env, cwd=REPO_ROOT,
        input=stdin, capture_output=True, text=True, timeout=60,
    )


def test_process_prints_signature_and_saves(env):
    environ, storage = env
    result = run(["process", IDS[0]], environ)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{IDS[0]}: crash_here (sentry: not sent: no DSN)"
    assert storage.load_processed_crash(IDS[0])["signature"] == "crash_here"


def test_reprocess_reads_ids_from_stdin_with_progress(env):
    environ, storage = env
    run(["process", IDS[0]], environ)
    result = run(["reprocess"], environ, stdin="\n".join(IDS) + "\nnot-a-crash-id\n")
    assert result.returncode == 1  # one bad id
    assert "[" in result.stderr and "3/3" in result.stderr  # progress bar
    assert "not-a-crash-id: not a crash id" in result.stdout
    for crash_id in IDS:
        assert f"{crash_id}: crash_here" in result.stdout
    history = storage.load_processed_crash(IDS[0])["processor_history"]
    assert len(history) == 1


def test_missing_crash_exits_nonzero(env):
    environ, _ = env
    result = run(["process", "cccccccc-cbbf-4589-a673-34f800160918"], environ)
    assert result.returncode == 1
    assert "not found in storage" in result.stdout


def test_process_file_event_output(env):
    environ, _ = env
    result = run(["process-file", str(DUMP), "--symbols", environ["PROCESSOR_SYMBOLS_PATHS"], "--event"], environ)
    assert result.returncode == 0, result.stderr
    event = json.loads(result.stdout)
    assert event["platform"] == "native"
    assert event["exception"]["values"][0]["stacktrace"]["frames"][-1]["function"] == "crash_here"
