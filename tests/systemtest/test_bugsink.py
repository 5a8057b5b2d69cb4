"""Events built by build_event, delivered by SentryDelivery, read back from a real Bugsink."""

import time
import uuid

from everett.manager import ConfigManager

from processor.sentry_delivery import SentryDelivery
from processor.sentry_event import build_event
from testlib.sentry_fixtures import processed_crash_from_corpus


def config(**values):
    return ConfigManager.from_dict(values).with_namespace("processor")


def send(bugsink, source, name, **options):
    crash_id = str(uuid.uuid4())
    pc = processed_crash_from_corpus(source, name, crash_id)
    raw = {"ProductName": "Demo", "Version": "2.0.1", "ReleaseChannel": "nightly",
           "uuid": crash_id, "CrashTime": str(int(time.time())), "Vendor": "ACME"}
    event = build_event(pc, raw, config())
    result = SentryDelivery(config(**options)).send(event, "bugsink", bugsink.dsn,
                                                    minidump=b"MDMP fake")
    return pc, event, result


def test_linux_event_arrives_with_frames_release_tags(bugsink):
    pc, event, result = send(bugsink, "generated", "breakpad_segv")
    assert result["status"] == "sent" and result["http_status"] == 200

    stored = bugsink.event(event["event_id"])
    data = stored["data"]
    assert data["release"] == "Demo@2.0.1"
    assert data["environment"] == "nightly"
    assert data["tags"]["signature"] == "crash_here"
    assert data["tags"]["product"] == "Demo" and data["tags"]["Vendor"] == "ACME"
    frames = data["exception"]["values"][0]["stacktrace"]["frames"]
    assert frames[-1]["function"] == "crash_here"
    assert frames[-1]["instruction_addr"] == "0x55830d2b8b05"
    assert frames[-1]["lineno"] == 5
    assert len(frames) == pc["threads"][0]["frame_count"]
    assert data["debug_meta"]["images"][0]["debug_id"] == "8c180107-341c-9e73-44ca-580f2736adc0"
    assert "server_name" not in data

    issue = bugsink.api(f"issues/{stored['issue']}/")
    assert issue["transaction"] == "crash_here"
    assert event["event_id"] in {e["data"]["event_id"] for e in bugsink.events()}


def test_windows_event_with_plain_attachment(bugsink):
    _, event, result = send(bugsink, "sentry-crash", "windows",
                            PROCESSOR_SENTRY_ATTACH_MINIDUMP="true")
    assert result["status"] == "sent"
    data = bugsink.event(event["event_id"])["data"]
    assert data["exception"]["values"][0]["type"] == "EXCEPTION_ACCESS_VIOLATION_WRITE"
    assert [t["id"] for t in data["threads"]["values"]] == [0, 1, 2, 3]
    assert data["debug_meta"]["images"][0]["type"] == "pe"


def test_unknown_project_key_is_recorded_failure(bugsink):
    _, event, _ = send(bugsink, "generated", "breakpad_segv")
    bad_dsn = f"http://{'0' * 32}@127.0.0.1:{bugsink.port}/{bugsink.project_id}"
    result = SentryDelivery(config()).send(event, "bugsink", bad_dsn)
    assert result["status"].startswith("failed: HTTP 4")
    assert result["attempts"] == 1
