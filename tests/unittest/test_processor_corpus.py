"""Every corpus dump through the whole processor: frames right, event accepted by Relay."""

import json
import os

import pytest
from sentry_relay.processing import StoreNormalizer

from antenna.ext.crashstorage_base import NoOpCrashStorage
from antenna.libconfig import build_config_manager
from antenna.metrics import LoggingMetrics
from processor.app import build_processor
from tests.corpus import params

CRASH_ID = "de1bb258-cbbf-4589-a673-34f800160918"
RAW_CRASH = {
    "uuid": CRASH_ID,
    "ProductName": "CorpusApp",
    "Version": "2.1.0",
    "ReleaseChannel": "beta",
    "submitted_timestamp": "2026-11-29T10:00:00+00:00",
    "Comment": "crashed while saving /home/alice/report.txt, mail bob@example.com",
}


def processor_for(case, tmp_path):
    config = build_config_manager(
        {
            "PROCESSOR_SYMBOLS_PATHS": str(case.symbols) if case.symbols else "",
            "PROCESSOR_SYMBOLS_CACHE": str(tmp_path / "symcache"),
        }
    )
    processor = build_processor(
        config, NoOpCrashStorage(config.with_namespace("crashstorage")), LoggingMetrics(config)
    )
    binary = processor.stackwalker.config("stackwalker")
    if not os.path.exists(binary):
        pytest.skip(f"stackwalker not installed at {binary}; run make setup")
    return processor


def expected_top_frames(case, thread_index):
    """(module, function, file basename, line) of the top 5 frames in the expected -m output.

    The processor parses the plain output, which prints source files as basenames.
    """
    frames = []
    for line in case.expected_m.read_text().splitlines():
        parts = line.split("|")
        if len(parts) >= 7 and parts[0].isdigit() and int(parts[0]) == thread_index:
            source = parts[4].replace("\\", "/").rsplit("/", 1)[-1] or None
            frames.append((parts[2] or None, parts[3] or None, source, int(parts[5]) if parts[5] else None))
    return frames[:5]


def expected_crashing_thread(case):
    for line in case.expected_m.read_text().splitlines():
        if line.startswith("Crash|"):
            value = line.split("|")[3]
            return int(value) if value else None
    return None


@pytest.mark.parametrize("case", params())
def test_corpus_dump_processed_and_event_normalizes(case, tmp_path):
    processor = processor_for(case, tmp_path)
    processed = processor.process(CRASH_ID, dict(RAW_CRASH), {"dump": case.dump.read_bytes()})
    assert processed["stackwalker"]["status"] == "ok"

    crashing = expected_crashing_thread(case)
    assert processed["crashing_thread"] == crashing
    if crashing is not None:
        thread = next(t for t in processed["threads"] if t["thread_index"] == crashing)
        got = [(f["module"], f["function"], f["file"], f["line"]) for f in thread["frames"][:5]]
        assert got == expected_top_frames(case, crashing)
    assert processed["signature"]

    event = processor.event_builder.build(processed, RAW_CRASH)
    normalized = StoreNormalizer(project_id=1).normalize_event(event)
    assert "errors" not in normalized, normalized.get("errors")
    assert normalized["platform"] == "native" and normalized["level"] == "fatal"
    assert normalized["release"] == "CorpusApp@2.1.0"
    text = json.dumps(event)
    assert "alice" not in text and "bob@example.com" not in text
    assert "server_name" not in event


@pytest.mark.parametrize("case", params(bad_input=True))
def test_bad_dumps_still_give_a_visible_failure(case, tmp_path):
    processor = processor_for(case, tmp_path)
    processed = processor.process(CRASH_ID, dict(RAW_CRASH), {"dump": case.dump.read_bytes()})
    assert processed["success"] is False
    assert processed["signature"].startswith("EMPTY: no frame data available; error")
    assert any("stackwalker failed" in note for note in processed["processor_notes"])
    event = processor.event_builder.build(processed, RAW_CRASH)
    assert "errors" not in StoreNormalizer(project_id=1).normalize_event(event)
    assert "EMPTY" in event["exception"]["values"][0]["value"] or "error" in event["exception"]["values"][0]["value"]
