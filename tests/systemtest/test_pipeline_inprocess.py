"""One box: collector under gunicorn+gevent, in-process processor, a real Bugsink."""

import pytest
import requests

from testlib.multipart import multipart_body
from testlib.processed import wait_for_processed
from tests.corpus import CORPUS_DIR

DUMP = CORPUS_DIR / "generated" / "breakpad_segv.dmp"
SYMBOLS = CORPUS_DIR / "generated" / "symbols"

pytestmark = pytest.mark.skipif(not DUMP.exists(), reason=f"corpus not found at {CORPUS_DIR}")


def test_crash_goes_from_post_to_bugsink(start_collector, bugsink, tmp_path):
    server = start_collector(
        workers=1,
        CRASHPUBLISH_CLASS="processor.inprocess.InProcessCrashPublish",
        PROCESSOR_SENTRY_DSN=bugsink.dsn,
        PROCESSOR_SYMBOLS_PATHS=str(SYMBOLS),
        PROCESSOR_SYMBOLS_CACHE=str(tmp_path / "symcache"),
    )
    annotations = {"ProductName": "OneBox", "Version": "5.0", "ReleaseChannel": "beta", "Vendor": "ACME"}
    body, headers = multipart_body(annotations, {"upload_file_minidump": DUMP.read_bytes()})
    resp = requests.post(server.url + "/submit", data=body, headers=headers, timeout=10)
    assert resp.status_code == 200
    crash_id = resp.text.strip().removeprefix("CrashID=bp-")

    processed = wait_for_processed(str(tmp_path / "crashes"), crash_id)
    assert processed is not None, "not processed within 30 s"
    assert processed["signature"] == "crash_here"
    assert processed["sentry"]["status"] == "sent", processed["sentry"]

    data = bugsink.event(processed["sentry"]["event_id"])["data"]
    frames = data["exception"]["values"][0]["stacktrace"]["frames"]
    assert [f.get("function") for f in frames[-4:]] == ["main", "level_one", "level_two", "crash_here"]
    assert frames[-1]["filename"].endswith("crash_target.c") and frames[-1]["lineno"] == 5
    assert data["release"] == "OneBox@5.0" and data["environment"] == "beta"
    assert data["tags"]["product"] == "OneBox"
