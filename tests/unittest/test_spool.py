"""The spool is what makes a 200 durable: test its file format and adoption."""

import multiprocessing
import os

import pytest

from antenna.rawcrash import CrashReport
from antenna.spool import CorruptSpoolFile, Spool, decode, encode


def report(crash_id="de1bb258-cbbf-4589-a673-34f800160918"):
    rep = CrashReport(crash_id=crash_id, dumps={"upload_file_minidump": b"MDMP" * 100})
    rep.checksums["upload_file_minidump"] = __import__("hashlib").sha256(b"MDMP" * 100).hexdigest()
    return rep


def test_round_trip(tmp_path):
    spool = Spool(tmp_path)
    entry = spool.write(report(), {"ProductName": "A"})
    raw, dumps = spool.read(entry)
    assert raw == {"ProductName": "A"}
    assert dumps == {"upload_file_minidump": b"MDMP" * 100}
    assert [e.crash_id for e in spool.pending()] == [entry.crash_id]
    spool.remove(entry)
    assert spool.pending() == []


def test_truncated_or_damaged_files_are_detected():
    blob = b"".join(encode(report(), {"a": "b"}))
    with pytest.raises(CorruptSpoolFile):
        decode(blob[:-3])
    damaged = blob.replace(b"MDMPMDMP", b"XXXXXXXX", 1)
    with pytest.raises(CorruptSpoolFile):
        decode(damaged)


def hold_spool_and_die(root, crash_id, conn):
    spool = Spool(root)
    spool.write(report(crash_id), {"ProductName": "orphan"})
    conn.send("written")
    conn.recv()  # wait to be killed
    os._exit(0)


def test_live_workers_are_left_alone_dead_ones_adopted(tmp_path):
    crash_id = "aaaaaaaa-cbbf-4589-a673-34f800160918"
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("fork").Process(
        target=hold_spool_and_die, args=(tmp_path, crash_id, child)
    )
    proc.start()
    assert parent.recv() == "written"
    mine = Spool(tmp_path)
    assert mine.adopt_orphans() == []  # its worker still holds the lock
    proc.kill()
    proc.join()
    adopted = mine.adopt_orphans()
    assert [e.crash_id for e in adopted] == [crash_id]
    assert mine.read(adopted[0])[0] == {"ProductName": "orphan"}
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(mine.dir)]


def test_incomplete_orphans_are_dropped(tmp_path):
    dead = Spool(tmp_path)
    entry = dead.write(report(), {"x": "y"})
    with open(entry.path, "r+b") as fp:
        fp.truncate(entry.size - 10)
    dead.close()
    assert Spool(tmp_path).adopt_orphans() == []
