import json
import socket
import time

import pytest
from everett.manager import ConfigManager
from sentry_relay.processing import StoreNormalizer
from sentry_sdk.utils import json_dumps

from processor import scrub
from processor.scrub import scrub_annotations, scrub_path, scrub_text
from processor.sentry_event import SentryEventBuilder, breakpad_to_sentry_debug_id, build_event
from testlib.sentry_fixtures import processed_crash_from_corpus

CRASH_ID = "de1bb258-cbbf-4589-a673-34f800160918"
CASES = [
    ("generated", "breakpad_segv"),
    ("sentry-crash", "linux"),
    ("sentry-crash", "windows"),
    ("sentry-crash", "macos"),
    ("breakpad", "linux_inline"),
    ("mozilla-pgo", "android-arm"),
]


def config(**values):
    return ConfigManager.from_dict(values).with_namespace("processor")


def raw_crash(**extra):
    raw = {
        "ProductName": "Demo", "Version": "1.2.3", "ReleaseChannel": "beta", "BuildID": "20260101",
        "uuid": CRASH_ID, "submitted_timestamp": "2026-01-01T00:00:00+00:00",
        "CrashTime": str(int(time.time())), "metadata": {"collector_notes": []},
        "dump_checksums": {"upload_file_minidump": "ab" * 32},
    }
    raw.update(extra)
    return raw


def assert_relay_accepts(event):
    """Sentry's own normalizer must report no errors anywhere."""
    normalized = StoreNormalizer(project_id=1).normalize_event(event)
    assert "errors" not in normalized, normalized["errors"]
    assert '"err"' not in json.dumps(normalized.get("_meta", {}))
    return normalized


@pytest.mark.parametrize("source,name", CASES)
def test_corpus_events_pass_relay(source, name):
    pc = processed_crash_from_corpus(source, name, CRASH_ID)
    event = build_event(pc, raw_crash(), config())
    normalized = assert_relay_accepts(event)
    assert len(json.dumps(event)) < 1_000_000
    assert normalized["platform"] == "native"
    assert normalized["exception"]["values"][0]["type"] == pc["reason"]


def test_event_fields_per_design():
    pc = processed_crash_from_corpus("generated", "breakpad_segv", CRASH_ID)
    pc.update(product="Demo", version="1.2.3", release_channel="beta", build="20260101")
    event = build_event(pc, raw_crash(), config())

    assert event["event_id"] == CRASH_ID.replace("-", "")
    assert event["platform"] == "native" and event["level"] == "fatal"
    assert "server_name" not in event
    exc = event["exception"]["values"][0]
    assert exc["type"] == "SIGSEGV /SEGV_MAPERR"
    assert exc["value"] == "SIGSEGV /SEGV_MAPERR at 0x0"
    assert exc["mechanism"] == {"type": "minidump", "handled": False, "synthetic": True}
    assert exc["thread_id"] == 0
    frames = exc["stacktrace"]["frames"]
    # Outermost first, crashing frame last.
    crashing = frames[-1]
    assert crashing["function"] == "crash_here"
    assert crashing["instruction_addr"] == "0x55830d2b8b05"
    assert crashing["package"] == "crash_bp"
    assert crashing["filename"] == "/src/crash_target.c" and crashing["lineno"] == 5
    assert crashing["in_app"] is True
    assert crashing["symbol_addr"] == "0x55830d2b8b01"
    assert crashing["image_addr"] == "0x55830d2b6000"
    assert all(f["instruction_addr"].startswith("0x") for f in frames)
    libc = [f for f in frames if f.get("package") == "libc.so.6"]
    assert libc and not any(f["in_app"] for f in libc)
    assert len(frames) == len(pc["threads"][0]["frames"])

    (thread,) = event["threads"]["values"]
    assert thread == {"id": 0, "crashed": True, "current": True}  # stack lives in exception

    images = event["debug_meta"]["images"]
    main = images[0]
    assert main == {
        "type": "elf", "image_addr": "0x55830d2b6000", "image_size": 0x14000,
        "debug_id": "8c180107-341c-9e73-44ca-580f2736adc0", "code_file": "crash_bp",
        "debug_file": "crash_bp", "arch": "x86_64",
    }
    assert event["contexts"]["os"]["name"] == "Linux"
    assert event["contexts"]["os"]["version"] == "0.0.0"
    assert event["contexts"]["device"]["arch"] == "x86_64"
    assert event["contexts"]["device"]["processor_count"] == 1
    assert event["contexts"]["app"] == {"type": "app", "app_name": "Demo", "app_version": "1.2.3",
                                        "app_build": "20260101"}
    assert event["release"] == "Demo@1.2.3"
    assert event["environment"] == "beta"
    assert event["tags"]["product"] == "Demo" and event["tags"]["version"] == "1.2.3"
    assert event["tags"]["os"] == "Linux" and event["tags"]["cpu"] == "amd64"
    assert event["tags"]["crash_reason"] == "SIGSEGV /SEGV_MAPERR"
    assert event["tags"]["signature"] == "crash_here"
    assert event["fingerprint"] == ["crash_here"]
    assert event["transaction"] == "crash_here"
    # Collector fields and mapped annotations are not repeated in extra.
    assert "metadata" not in event["extra"] and "ProductName" not in event["extra"]
    assert set(event["extra"]) == {"BuildID", "CrashTime"}


def test_multithreaded_windows_event():
    pc = processed_crash_from_corpus("sentry-crash", "windows", CRASH_ID)
    event = build_event(pc, raw_crash(), config())
    assert_relay_accepts(event)
    threads = event["threads"]["values"]
    assert [t["id"] for t in threads] == [0, 1, 2, 3]
    assert threads[0]["crashed"] and "stacktrace" not in threads[0]
    assert all(not t["crashed"] and t["stacktrace"]["frames"] for t in threads[1:])
    images = event["debug_meta"]["images"]
    assert {i["type"] for i in images} == {"pe"}
    assert images[0]["debug_id"] == "3249d99d-0c40-4931-8610-f4e4fb0b6936-1"
    assert images[0]["arch"] == "x86"
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    assert frames[-1]["function"] == "main" and frames[-1]["in_app"]
    assert {f["package"]: f["in_app"] for f in frames}["ntdll.dll"] is False


def test_macos_images_are_macho_and_system_libs_not_in_app():
    pc = processed_crash_from_corpus("sentry-crash", "macos", CRASH_ID)
    event = build_event(pc, raw_crash(), config())
    assert {i["type"] for i in event["debug_meta"]["images"]} == {"macho"}
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    assert all(not f["in_app"] for f in frames if f.get("package", "").endswith(".dylib"))


def test_in_app_pattern_option():
    pc = processed_crash_from_corpus("sentry-crash", "windows", CRASH_ID)
    event = build_event(pc, raw_crash(), config(PROCESSOR_SENTRY_IN_APP_MODULES=r"^kernel32"))
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    assert {f["package"] for f in frames if f["in_app"]} == {"kernel32.dll"}


def test_huge_crash_is_trimmed_to_fit():
    pc = processed_crash_from_corpus("mozilla-pgo", "android-arm", CRASH_ID)
    builder = SentryEventBuilder(config(PROCESSOR_SENTRY_MAX_EVENT_BYTES="300000"))
    event, payload = builder.build_with_payload(pc, raw_crash())
    # The budget is on the bytes the envelope carries; the payload is the trimmed event.
    assert payload == json_dumps(event)
    assert len(payload) <= 300_000
    assert "omitted" in event["extra"]["sentry_trimmed"]
    assert event["exception"]["values"][0]["stacktrace"]["frames"]
    # Images without a debug id (mapped data files) are left out rather than rejected.
    assert all(i["debug_id"] for i in event["debug_meta"]["images"])
    assert_relay_accepts(event)


def test_failed_stackwalk_still_valid():
    pc = {
        "crash_id": CRASH_ID, "signature": "EMPTY: no frame data available", "product": "Demo",
        "version": "1.2.3", "os_name": None, "reason": None, "address": None,
        "crashing_thread": None, "threads": [], "modules": [], "success": False,
        "processor_notes": ["minidump_stackwalk failed"],
        "stackwalker": {"status": "error", "returncode": 1},
    }
    event = build_event(pc, raw_crash(), config())
    assert_relay_accepts(event)
    exc = event["exception"]["values"][0]
    assert exc["value"] == "EMPTY: no frame data available; error: exit 1"
    assert "stacktrace" not in exc and "thread_id" not in exc
    assert event["fingerprint"] == ["EMPTY: no frame data available"]
    assert event["transaction"] == "EMPTY: no frame data available"


def test_annotation_mapping_options():
    pc = processed_crash_from_corpus("generated", "breakpad_segv", CRASH_ID)
    raw = raw_crash(App="Thing", AppVer="9", Chan="nightly", Android_Model="Pixel 7",
                    Vendor="ACME", Flavor="red")
    cfg = config(PROCESSOR_SENTRY_PRODUCT_ANNOTATION="App",
                 PROCESSOR_SENTRY_VERSION_ANNOTATION="AppVer",
                 PROCESSOR_SENTRY_ENVIRONMENT_ANNOTATION="Chan",
                 PROCESSOR_SENTRY_TAG_ANNOTATIONS="Vendor,Flavor")
    event = build_event(pc, raw, cfg)
    assert event["release"] == "Thing@9"
    assert event["environment"] == "nightly"
    assert event["tags"]["Vendor"] == "ACME" and event["tags"]["Flavor"] == "red"
    assert event["contexts"]["device"]["model"] == "Pixel 7"
    assert not {"App", "AppVer", "Chan", "Vendor", "Flavor", "Android_Model"} & set(event["extra"])
    assert_relay_accepts(event)


def test_long_signature_tag_is_truncated():
    pc = processed_crash_from_corpus("generated", "breakpad_segv", CRASH_ID, signature="x" * 500)
    event = build_event(pc, raw_crash(), config())
    assert len(event["tags"]["signature"]) == 200
    assert event["fingerprint"] == ["x" * 500]
    assert_relay_accepts(event)


def test_debug_id_conversion():
    assert breakpad_to_sentry_debug_id("C0BCC3F19827FE653058404B2831D9E60") == \
        "c0bcc3f1-9827-fe65-3058-404b2831d9e6"
    assert breakpad_to_sentry_debug_id("0ED80A50ECDA472B86A4EB6C833F8E1B1A") == \
        "0ed80a50-ecda-472b-86a4-eb6c833f8e1b-1a"
    assert breakpad_to_sentry_debug_id("") is None
    assert breakpad_to_sentry_debug_id("xyz") is None


# -- scrubbing -------------------------------------------------------------------------------

def test_scrub_home_paths():
    assert scrub_path("/home/alice/build/libfoo.so") == "/home/<user>/build/libfoo.so"
    assert scrub_path("/Users/bob/Library/x.dylib") == "/Users/<user>/Library/x.dylib"
    assert scrub_path(r"C:\Users\carol\AppData\x.dll") == r"C:\Users\<user>\AppData\x.dll"
    assert scrub_path(r"c:\users\carol\x.dll") == r"c:\users\<user>\x.dll"
    assert scrub_path("/usr/lib/libc.so.6") == "/usr/lib/libc.so.6"


@pytest.fixture
def host_names(monkeypatch):
    """Pretend the processor runs on a distinctively named host (the test VM's may be "vm")."""
    names = ["crashbox-7.corp.example", "crashbox-7", socket.gethostname()]
    monkeypatch.setattr(scrub, "_HOST_NAMES", names)
    return names


def test_scrub_text_emails_urls_hostname(host_names):
    text = ("mail dave@example.com see https://example.org/p?token=abc on "
            "crashbox-7 (crashbox-7.corp.example) at /home/dave/x, not jvm or crashbox-77")
    scrubbed = scrub_text(text)
    assert "dave" not in scrubbed and "example" not in scrubbed and "token" not in scrubbed
    assert scrubbed == ("mail [email] see [url] on [host] ([host]) at /home/<user>/x, "
                        "not jvm or crashbox-77")
    assert scrub_text(f"on {socket.gethostname()}.") == "on [host]."


def test_scrub_annotations_secrets_and_allow_list():
    scrubbed = scrub_annotations(
        {"API_Key": "s3cret", "AuthToken": "t", "Hostname": "box", "Notes": "a@b.example",
         "StartupURL": "https://intranet.example/x", "Nested": {"Password": "p"}},
        allow_keys=["StartupURL"],
    )
    assert scrubbed["API_Key"] == scrubbed["AuthToken"] == scrubbed["Hostname"] == "[Filtered]"
    assert scrubbed["Notes"] == "[email]"
    assert scrubbed["StartupURL"] == "https://intranet.example/x"
    assert scrubbed["Nested"] == {"Password": "[Filtered]"}


def test_event_never_leaks_personal_data(host_names):
    pc = processed_crash_from_corpus("generated", "breakpad_segv", CRASH_ID)
    pc["modules"][0]["filename"] = "/home/erin/app/crash_bp"
    pc["threads"][0]["frames"][0]["file"] = "/home/erin/src/crash_target.c"
    raw = raw_crash(Email="erin@example.com", URL="https://x.example/?s=1",
                    Comments="from erin@example.com", Hostname="crashbox-7",
                    Note="built on crashbox-7.corp.example",
                    SECRET_key="abc", Path="/home/erin/.app", ServerName="srv1",
                    StartupURL="https://intranet.example/a")
    event = build_event(pc, raw, config(PROCESSOR_SENTRY_EXTRA_ALLOW_KEYS="StartupURL"))
    text = json.dumps(event)
    for leaked in ("erin", "abc", "crashbox", "x.example", "srv1"):
        assert leaked not in text, leaked
    assert event["extra"]["Path"] == "/home/<user>/.app"
    assert event["extra"]["StartupURL"] == "https://intranet.example/a"
    assert event["debug_meta"]["images"][0]["code_file"] == "/home/<user>/app/crash_bp"
    assert_relay_accepts(event)


def test_payload_is_the_event_json_and_frames_are_distinct():
    pc = processed_crash_from_corpus("mozilla-pgo", "linux-x86_64", CRASH_ID)
    event, payload = SentryEventBuilder(config()).build_with_payload(pc, raw_crash())
    assert payload == json_dumps(event)
    assert "sentry_trimmed" not in event["extra"]
    # Repeated frames are converted once but every event frame is its own dict.
    frames = [
        f for t in event["threads"]["values"] for f in t.get("stacktrace", {}).get("frames", [])
    ]
    assert len({id(f) for f in frames}) == len(frames)
