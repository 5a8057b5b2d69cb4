"""Processor.process_crash: storage in, processed crash + Sentry event out, failures visible."""

import hashlib
import json

import pytest

from antenna.ext.fs.crashstorage import FSCrashStorage
from antenna.libconfig import build_config_manager
from antenna.metrics import LoggingMetrics
from processor.app import build_processor
from testlib.fake_sentry import FakeSentry
from tests.corpus import CORPUS_DIR

CRASH_ID = "de1bb258-cbbf-4589-a673-34f800160918"
DUMP = CORPUS_DIR / "generated" / "breakpad_segv.dmp"
SYMBOLS = CORPUS_DIR / "generated" / "symbols"
RAW = {
    "uuid": CRASH_ID,
    "ProductName": "Crashy",
    "Version": "3.4.5",
    "ReleaseChannel": "beta",
    "submitted_timestamp": "2026-11-29T10:00:00+00:00",
    "legacy_processing": 0,
}

pytestmark = pytest.mark.skipif(not DUMP.exists(), reason=f"corpus not found at {CORPUS_DIR}")


def make(tmp_path, local_files=True, **env):
    config = build_config_manager(
        {
            "CRASHSTORAGE_FS_ROOT": str(tmp_path / "crashes"),
            "PROCESSOR_SYMBOLS_PATHS": str(SYMBOLS),
            "PROCESSOR_SYMBOLS_CACHE": str(tmp_path / "symcache"),
            "PROCESSOR_SENTRY_BACKOFF": "0.01",
            **env,
        }
    )
    storage = FSCrashStorage(config.with_namespace("crashstorage"))
    if not local_files:  # as S3 storage: the stackwalker needs a temporary copy
        storage.local_file = lambda key: None
    return storage, build_processor(config, storage, LoggingMetrics(config))


def store(storage, dump=None, raw=RAW):
    storage.save_crash(CRASH_ID, raw, {"upload_file_minidump": DUMP.read_bytes() if dump is None else dump})


def test_processed_crash_saved_and_event_sent(tmp_path, sentry):
    storage, processor = make(tmp_path, PROCESSOR_SENTRY_DSN=sentry.dsn)
    store(storage)
    processed = processor.process_crash(CRASH_ID)
    saved = storage.load_processed_crash(CRASH_ID)
    assert saved == json.loads(json.dumps(processed))
    assert saved["success"] is True
    assert saved["signature"] == "crash_here"
    assert saved["product"] == "Crashy" and saved["release_channel"] == "beta"
    assert saved["stackwalker"]["status"] == "ok"
    assert saved["sentry"]["status"] == "sent" and saved["sentry"]["dsn_name"] == "default"
    [envelope] = sentry.envelopes()
    event = envelope.get_event()
    assert event["event_id"] == saved["sentry"]["event_id"]
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    assert frames[-1]["function"] == "crash_here" and frames[-1]["lineno"] == 5
    assert [f["function"] for f in frames[-4:-1]] == ["main", "level_one", "level_two"]
    assert event["release"] == "Crashy@3.4.5"
    assert all(item.headers.get("attachment_type") != "event.minidump" for item in envelope.items)


def test_garbage_dump_gives_visible_failure(tmp_path, sentry):
    storage, processor = make(tmp_path, PROCESSOR_SENTRY_DSN=sentry.dsn)
    store(storage, dump=b"MDMP" + b"\x00" * 100)
    processed = processor.process_crash(CRASH_ID)
    assert processed["success"] is False
    assert processed["signature"].startswith("EMPTY: no frame data available; error")
    assert storage.load_processed_crash(CRASH_ID)["success"] is False
    event = sentry.envelopes()[0].get_event()
    assert "stackwalker" in event["exception"]["values"][0]["value"] or "EMPTY" in event["exception"]["values"][0]["value"]


def test_stackwalker_timeout_is_recorded(tmp_path, sentry):
    storage, processor = make(
        tmp_path, PROCESSOR_SENTRY_DSN=sentry.dsn, PROCESSOR_STACKWALKER_TIMEOUT="0.000001"
    )
    store(storage)
    processed = processor.process_crash(CRASH_ID)
    assert processed["stackwalker"]["status"] == "timeout"
    assert "stackwalker failed: timeout" in processed["processor_notes"]
    assert processed["signature"] == "EMPTY: no frame data available; timeout"


def test_stackwalker_reads_the_stored_dump_in_place(tmp_path, monkeypatch):
    """Filesystem storage: no temporary copy of the dump, and the collector's checksum is kept."""
    storage, processor = make(tmp_path, PROCESSOR_TEMP_DIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    recorded = "ab" * 32
    store(storage, raw={**RAW, "dump_checksums": {"upload_file_minidump": recorded}})
    seen = []
    walk = processor.stackwalker.walk

    def spy(path, symbol_dirs=()):
        seen.append((path, sorted(p.name for p in (tmp_path / "tmp").iterdir())))
        return walk(path, symbol_dirs)

    monkeypatch.setattr(processor.stackwalker, "walk", spy)
    processed = processor.process_crash(CRASH_ID)
    [(path, temp_files)] = seen
    assert path == storage.path(f"v1/dump/{CRASH_ID}") and temp_files == []
    assert processed["signature"] == "crash_here"
    assert processed["minidump_sha256"] == recorded


def test_storage_without_local_files_gets_a_temp_copy(tmp_path, monkeypatch):
    storage, processor = make(tmp_path, local_files=False, PROCESSOR_TEMP_DIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    store(storage, raw={**RAW, "dump_checksums": {"upload_file_minidump": "not a sha256"}})
    seen = []
    walk = processor.stackwalker.walk

    def spy(path, symbol_dirs=()):
        seen.append((path, open(path, "rb").read() == DUMP.read_bytes()))
        return walk(path, symbol_dirs)

    monkeypatch.setattr(processor.stackwalker, "walk", spy)
    processed = processor.process_crash(CRASH_ID)
    [(path, same_bytes)] = seen
    assert path.startswith(str(tmp_path / "tmp")) and same_bytes
    assert list((tmp_path / "tmp").iterdir()) == []  # removed after the walk
    assert processed["signature"] == "crash_here"
    assert processed["minidump_sha256"] == hashlib.sha256(DUMP.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "annotations,release",
    [
        ({"_productName": "Notes", "_version": "2.1.0", "prod": "Electron", "ver": "30.0.1"}, "Notes@2.1.0"),
        ({"prod": "Chat", "ver": "5.0"}, "Chat@5.0"),
    ],
    ids=["electron", "crashpad"],
)
def test_electron_and_crashpad_names_give_product_and_release(tmp_path, sentry, annotations, release):
    storage, processor = make(tmp_path, PROCESSOR_SENTRY_DSN=sentry.dsn)
    raw = {k: v for k, v in RAW.items() if k not in ("ProductName", "Version")}
    store(storage, raw={**raw, **annotations})
    processed = processor.process_crash(CRASH_ID)
    assert f"{processed['product']}@{processed['version']}" == release
    assert sentry.envelopes()[0].get_event()["release"] == release


def test_missing_crash_is_reported_not_sent(tmp_path, sentry):
    _, processor = make(tmp_path, PROCESSOR_SENTRY_DSN=sentry.dsn)
    assert processor.process_crash(CRASH_ID) is None
    assert sentry.requests == []


def test_no_dsn_still_saves_with_note(tmp_path):
    storage, processor = make(tmp_path)
    store(storage)
    processor.process_crash(CRASH_ID)
    saved = storage.load_processed_crash(CRASH_ID)
    assert saved["sentry"]["status"] == "not sent: no DSN"
    assert any("no Sentry DSN" in note for note in saved["processor_notes"])


def test_sentry_down_is_recorded(tmp_path, sentry):
    storage, processor = make(tmp_path, PROCESSOR_SENTRY_DSN=sentry.dsn, PROCESSOR_SENTRY_RETRIES="2")
    sentry.script = [(503, {}), (503, {})]
    store(storage)
    processed = processor.process_crash(CRASH_ID)
    assert processed["sentry"]["status"] == "failed: HTTP 503"
    assert processed["sentry"]["attempts"] == 2
    assert storage.load_processed_crash(CRASH_ID)["sentry"]["status"] == "failed: HTTP 503"


def test_reprocessing_keeps_history(tmp_path):
    storage, processor = make(tmp_path)
    store(storage)
    first = processor.process_crash(CRASH_ID)
    second = processor.process_crash(CRASH_ID)
    assert len(second["processor_history"]) == 1
    assert second["processor_history"][0]["processor_notes"] == first["processor_notes"]
    assert second["processor_history"][0]["signature"] == "crash_here"


def test_routes_pick_the_dsn(tmp_path, sentry):
    mobile = FakeSentry().start()
    try:
        storage, processor = make(
            tmp_path,
            PROCESSOR_SENTRY_DSN=sentry.dsn,
            PROCESSOR_SENTRY_ROUTES="processor.routes_example.ROUTES",
            PROCESSOR_SENTRY_DSN_MOBILE=mobile.dsn,
            PROCESSOR_SENTRY_DSN_PIXEL=mobile.dsn,
        )
        store(storage, raw=dict(RAW, ProductName="Focus"))
        processed = processor.process_crash(CRASH_ID)
        assert processed["sentry"]["dsn_name"] == "mobile"
        assert len(mobile.requests) == 1 and sentry.requests == []
    finally:
        mobile.stop()


def test_processed_crash_saved_once_after_sentry(tmp_path, sentry):
    storage, processor = make(tmp_path, PROCESSOR_SENTRY_DSN=sentry.dsn)
    store(storage)
    saved = []
    save = storage.save_processed_crash
    def recording_save(crash_id, processed):
        saved.append(processed["sentry"])
        save(crash_id, processed)

    storage.save_processed_crash = recording_save
    processor.process_crash(CRASH_ID)
    assert [s["status"] for s in saved] == ["sent"]


def test_event_building_bug_still_saves_the_crash(tmp_path, sentry, monkeypatch):
    storage, processor = make(tmp_path, PROCESSOR_SENTRY_DSN=sentry.dsn)
    store(storage)

    def broken(processed, raw_crash):
        raise RuntimeError("boom")

    monkeypatch.setattr(processor.event_builder, "build_with_payload", broken)
    processor.process_crash(CRASH_ID)
    saved = storage.load_processed_crash(CRASH_ID)
    assert saved["signature"] == "crash_here"
    assert saved["sentry"]["status"].startswith("failed: RuntimeError")
    assert any("Sentry delivery failed" in note for note in saved["processor_notes"])
    assert sentry.requests == []
