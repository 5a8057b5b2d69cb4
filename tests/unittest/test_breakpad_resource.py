"""POST /submit through Falcon, storage on a temp filesystem."""

import gzip
import hashlib
import json
import os

import gevent.event
import pytest

from antenna import crashid
from antenna.breakpad_resource import HUB_INFLATE_MAX, HUB_PARSE_MAX_BODY
from testlib.multipart import gzip_body, multipart_body

DUMP = b"MDMP" + bytes(range(256)) * 40


def crash_id_of(resp):
    assert resp.status_code == 200, resp.text
    assert resp.text.startswith("CrashID=bp-"), resp.text
    return resp.text.strip()[len("CrashID=bp-") :]


def stored(collector, crash_id):
    storage = collector.app.crashstorage
    return storage.load_raw_crash(crash_id), storage.load_dumps(crash_id)


def test_plain_multipart_is_saved(collector):
    body, headers = multipart_body(
        {"ProductName": "App", "Version": "1.0"}, {"upload_file_minidump": DUMP}
    )
    resp = collector.post(body, headers)
    crash_id = crash_id_of(resp)
    assert resp.headers["content-type"].startswith("text/plain")
    assert crashid.is_valid_crash_id(crash_id)
    assert crash_id[-7] == "0"  # ACCEPT
    collector.drain()
    raw, dumps = stored(collector, crash_id)
    assert raw["ProductName"] == "App"
    assert raw["uuid"] == crash_id
    assert raw["type_tag"] == "bp"
    assert raw["legacy_processing"] == 0
    assert raw["dump_checksums"] == {"upload_file_minidump": hashlib.sha256(DUMP).hexdigest()}
    assert raw["metadata"]["payload_compressed"] == "0"
    assert dumps == {"dump": DUMP}
    assert collector.app.crashpublish.published[-1] == crash_id
    assert collector.app.crashmover.spool.pending() == []


def test_gzip_and_multipart_mixed(collector):
    body, headers = multipart_body({"ProductName": "App"}, {"upload_file_minidump": DUMP}, mixed=True)
    body, headers = gzip_body(body, headers)
    crash_id = crash_id_of(collector.post(body, headers))
    collector.drain()
    raw, dumps = stored(collector, crash_id)
    assert raw["metadata"]["payload_compressed"] == "1"
    assert dumps["dump"] == DUMP


@pytest.mark.parametrize("encoding", ["x-gzip", "GZIP"])
def test_gzip_spellings(collector, encoding):
    body, headers = gzip_body(*multipart_body({"ProductName": "App"}, {"upload_file_minidump": DUMP}))
    crash_id = crash_id_of(collector.post(body, dict(headers, **{"Content-Encoding": encoding})))
    collector.drain()
    assert stored(collector, crash_id)[1]["dump"] == DUMP


def test_json_extra_and_several_dumps(collector):
    body, headers = multipart_body(
        None,
        {
            "upload_file_minidump": DUMP,
            "upload_file_minidump_browser": b"MDMPbrowser",
            "memory_report": (b"memory.json.gz", b"\x1f\x8bdata"),
        },
        extra_json={"ProductName": "Electron", "Version": "30.0", "nested": {"a": 1}},
    )
    crash_id = crash_id_of(collector.post(body, headers))
    collector.drain()
    raw, dumps = stored(collector, crash_id)
    assert raw["ProductName"] == "Electron"
    assert raw["nested"] == '{"a": 1}'
    assert set(dumps) == {"dump", "upload_file_minidump_browser", "memory_report"}
    names = json.loads(
        (collector.app.crashstorage.get(f"v1/dump_names/{crash_id}")).decode()
    )
    assert sorted(names) == sorted(dumps)


def test_null_bytes_invalid_utf8_and_duplicates(collector):
    body, headers = multipart_body(
        [
            ("ProductName", b"Ap\x00p"),
            ("Comment", b"bad \xff\xfe bytes"),
            ("ProductName", b"Second"),
            ("Na\x00me", b"v"),
        ],
        {"upload_file_minidump": DUMP},
    )
    crash_id = crash_id_of(collector.post(body, headers))
    collector.drain()
    raw, _ = stored(collector, crash_id)
    assert raw["ProductName"] == "App"
    assert raw["Comment"] == "bad \ufffd\ufffd bytes"
    assert raw["Name"] == "v"
    assert any("duplicate annotation" in n for n in raw["metadata"]["collector_notes"])


@pytest.mark.parametrize(
    "hostile, expected",
    [
        ("../../etc/passwd", "_.._etc_passwd"),
        ("..", "dump_1"),
        ("a/b\\c", "a_b_c"),
        (".hidden", "hidden"),
        ("x" * 300, "x" * 64),
    ],
)
def test_hostile_dump_names_are_sanitized(collector, hostile, expected):
    body, headers = multipart_body({"ProductName": "App"}, {hostile: DUMP})
    crash_id = crash_id_of(collector.post(body, headers))
    collector.drain()
    _, dumps = stored(collector, crash_id)
    assert list(dumps) == [expected]
    root = collector.app.crashstorage.root
    assert (collector.app.crashstorage.path(f"v1/{expected}/{crash_id}")).startswith(root)


def malformed_cases():
    good, good_headers = multipart_body({"ProductName": "App"}, {"upload_file_minidump": DUMP})
    boundary = good_headers["Content-Type"].split("boundary=")[1]
    no_annotations, na_headers = multipart_body({}, {"upload_file_minidump": DUMP})
    bad_json, bj_headers = multipart_body(None, None, extra_json=b"{not json")
    return [
        ("no_content_type", good, {}),
        ("wrong_content_type", good, {"Content-Type": "application/json"}),
        ("no_boundary", good, {"Content-Type": "multipart/form-data"}),
        ("bad_gzip", b"not gzip at all", dict(good_headers, **{"Content-Encoding": "gzip"})),
        ("bad_gzip", gzip.compress(good)[:-20], dict(good_headers, **{"Content-Encoding": "gzip"})),
        ("unsupported_content_encoding", good, dict(good_headers, **{"Content-Encoding": "br"})),
        ("no_annotations", no_annotations, na_headers),
        ("invalid_json", bad_json, bj_headers),
        ("bad_multipart", b"garbage without boundary", good_headers),
        ("bad_multipart", good[: len(good) // 2], {"Content-Type": f"multipart/form-data; boundary={boundary}"}),
    ]


@pytest.mark.parametrize("reason, body, headers", malformed_cases())
def test_malformed_input_gets_400_with_reason(collector, reason, body, headers):
    resp = collector.post(body, headers)
    assert resp.status_code == 400
    assert resp.text == f"Discarded=malformed_{reason}\n"
    # the worker keeps serving
    good, good_headers = multipart_body({"ProductName": "App"}, {"upload_file_minidump": DUMP})
    crash_id_of(collector.post(good, good_headers))


def test_too_large_compressed_and_gzip_bomb(make_collector):
    collector = make_collector(MAX_COMPRESSED_SIZE="10kb", MAX_DECOMPRESSED_SIZE="50kb")
    body, headers = multipart_body({"ProductName": "App"}, {"upload_file_minidump": b"x" * 20000})
    assert collector.post(body, headers).text == "Discarded=malformed_too_large\n"
    bomb, bomb_headers = gzip_body(*multipart_body({"P": "A"}, {"d": b"\0" * 5_000_000}))
    assert len(bomb) < 10_000
    resp = collector.post(bomb, bomb_headers)
    assert (resp.status_code, resp.text) == (400, "Discarded=malformed_too_large\n")


@pytest.mark.parametrize(
    "dump, use_gzip",
    [
        (os.urandom(HUB_PARSE_MAX_BODY + 1000), False),  # too big a body for the hub
        (b"MDMP" + b"\0" * (HUB_INFLATE_MAX + 1000), True),  # small body, inflates too much
    ],
    ids=["big-body", "big-inflate"],
)
def test_crashes_too_big_for_the_hub_are_parsed_in_a_thread(collector, dump, use_gzip):
    body, headers = multipart_body({"ProductName": "App"}, {"upload_file_minidump": dump})
    if use_gzip:
        body, headers = gzip_body(body, headers)
        assert len(body) <= HUB_PARSE_MAX_BODY
    crash_id = crash_id_of(collector.post(body, headers))
    collector.drain()
    assert stored(collector, crash_id)[1]["dump"] == dump


def test_part_count_and_annotation_size_limits(make_collector):
    collector = make_collector(MAX_PARTS="5", MAX_ANNOTATION_SIZE="100b")
    body, headers = multipart_body({f"k{i}": "v" for i in range(10)})
    assert collector.post(body, headers).text == "Discarded=malformed_too_many_parts\n"
    body, headers = multipart_body({"ProductName": "x" * 500})
    assert collector.post(body, headers).text == "Discarded=malformed_annotation_too_large\n"


def test_client_crash_id_is_reused_once(collector):
    supplied = "de1bb258-cbbf-4589-a673-34f801160918"
    body, headers = multipart_body({"ProductName": "App", "crash_id": supplied})
    assert crash_id_of(collector.post(body, headers)) == supplied
    collector.drain()
    raw, _ = stored(collector, supplied)
    assert raw["legacy_processing"] == 1  # the id's DEFER digit wins
    again = crash_id_of(collector.post(body, headers))
    assert again != supplied  # never overwrite a stored crash


def test_crash_id_reuse_requires_token_when_configured(make_collector):
    collector = make_collector(SECRET_CRASH_ID_REUSE_TOKEN="s3cret")
    supplied = "de1bb258-cbbf-4589-a673-34f800160918"
    body, headers = multipart_body({"ProductName": "App", "crash_id": supplied})
    assert crash_id_of(collector.post(body, headers)) != supplied
    headers = dict(headers, **{"X-Crash-Id-Token": "s3cret"})
    assert crash_id_of(collector.post(body, headers)) == supplied


def test_throttle_reject_and_fakeaccept(make_collector):
    collector = make_collector(
        THROTTLE_RULES="antenna.throttle_rules_example.RULES",
        PRODUCTS="antenna.throttle_rules_example.PRODUCTS",
    )
    body, headers = multipart_body({"ProductName": "Other"}, {"upload_file_minidump": DUMP})
    assert collector.post(body, headers).text == "Discarded=rule_unsupported_product\n"
    body, headers = multipart_body({"ProductName": "MyApp"})
    assert collector.post(body, headers).text == "Discarded=rule_has_no_dump\n"
    body, headers = multipart_body(
        {"ProductName": "MyApp", "Version": "1.0"}, {"upload_file_minidump": DUMP}
    )
    crash_id = crash_id_of(collector.post(body, headers))
    collector.drain()
    raw, _ = stored(collector, crash_id)
    assert raw["metadata"]["throttle_rule"] == "is_old_version"
    assert crash_id[-7] == "1" and raw["legacy_processing"] == 1
    assert crash_id not in collector.app.crashpublish.published  # DEFER is not published


def test_overloaded_answers_503_with_retry_after(make_collector, monkeypatch):
    collector = make_collector(CRASHMOVER_MAX_QUEUE_BYTES="30kb", CRASHMOVER_RETRY_AFTER="7")
    crashmover = collector.app.crashmover
    unstuck = gevent.event.Event()
    real_save = crashmover.save

    def stuck_save(*args):
        unstuck.wait()  # storage hangs: crashes pile up in the queue
        return real_save(*args)

    monkeypatch.setattr(crashmover, "save", stuck_save)
    body, headers = multipart_body({"ProductName": "App"}, {"upload_file_minidump": DUMP})
    statuses = [collector.post(body, headers) for _ in range(6)]
    codes = [r.status_code for r in statuses]
    assert 503 in codes and codes[0] == 200
    refused = statuses[codes.index(503)]
    assert refused.text == "Discarded=overloaded\n"
    assert refused.headers["retry-after"] == "7"
    unstuck.set()
    collector.drain()
    assert collector.post(body, headers).status_code == 200


def test_same_client_crash_id_twice_in_flight_gets_a_fresh_id(make_collector):
    """Two submissions reuse one id before the first is stored: the second gets a new id."""
    collector = make_collector()
    for mover in collector.app.crashmover.workers:
        mover.kill()  # keep crashes in the spool
    supplied = "de1bb258-cbbf-4589-a673-34f800160918"
    body, headers = multipart_body({"ProductName": "App", "crash_id": supplied})
    first = crash_id_of(collector.post(body, headers))
    second = crash_id_of(collector.post(body, headers))
    assert first == supplied and second != supplied
    assert {e.crash_id for e in collector.app.crashmover.spool.pending()} == {first, second}


def test_spool_write_failure_is_a_503_not_a_500(make_collector, monkeypatch):
    collector = make_collector()

    def disk_full(report, raw_crash):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(collector.app.crashmover.spool, "write", disk_full)
    body, headers = multipart_body({"ProductName": "App"}, {"upload_file_minidump": DUMP})
    resp = collector.post(body, headers)
    assert resp.status_code == 503
    assert resp.text == "Discarded=spool_unavailable\n"
    assert resp.headers["retry-after"]


def test_a_failed_sync_is_a_503_and_leaves_nothing_spooled(make_collector, monkeypatch):
    """The disk accepted the writes but could not make them durable: no 200, no leftovers."""
    collector = make_collector()
    barrier = collector.app.crashmover.spool_barrier

    def io_error(paths):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(barrier, "sync", io_error)
    body, headers = multipart_body({"ProductName": "App"}, {"upload_file_minidump": DUMP})
    resp = collector.post(body, headers)
    assert resp.status_code == 503
    assert resp.text == "Discarded=spool_unavailable\n"
    assert collector.app.crashmover.spool.pending() == []
    assert sorted(os.listdir(collector.app.crashmover.spool.dir)) == [".lock"]
