"""The spool is what makes a 200 durable: test its layout, damage detection and adoption."""

import hashlib
import multiprocessing
import os

import pytest

from antenna.ext.crashstorage_base import json_bytes
from antenna.rawcrash import CrashReport
from antenna.spool import CorruptSpoolEntry, Spool

DUMP = b"MDMP" * 100


def report(crash_id="de1bb258-cbbf-4589-a673-34f800160918"):
    return CrashReport(crash_id=crash_id, dumps={"upload_file_minidump": DUMP, "other": b"x"})


def raw_crash(**extra):
    checksums = {name: hashlib.sha256(data).hexdigest() for name, data in report().dumps.items()}
    return {"dump_checksums": checksums, **extra}


def test_round_trip(tmp_path):
    spool = Spool(tmp_path)
    entry = spool.write(report(), raw_crash(ProductName="A"))
    raw, dumps = spool.read(entry)
    assert raw["ProductName"] == "A"
    assert dumps == {"upload_file_minidump": DUMP, "other": b"x"}
    assert [e.crash_id for e in spool.pending()] == [entry.crash_id]
    assert open(entry.dump_path("upload_file_minidump"), "rb").read() == DUMP
    # The manifest is the raw crash exactly as storage keeps it, so storage can link it.
    assert open(entry.manifest_path, "rb").read() == json_bytes(raw_crash(ProductName="A"))
    spool.remove(entry)
    assert spool.pending() == []
    assert os.listdir(spool.dir) == [".lock"]


def test_a_spooled_crash_id_is_not_overwritten(tmp_path):
    spool = Spool(tmp_path)
    spool.write(report(), raw_crash(ProductName="first"))
    with pytest.raises(FileExistsError):
        spool.write(report(), raw_crash(ProductName="second"))
    assert spool.raw_crash(spool.pending()[0])["ProductName"] == "first"


def test_a_crash_killed_mid_write_is_not_complete(tmp_path):
    spool = Spool(tmp_path)
    entry = spool.write(report(), raw_crash())
    with open(entry.manifest_path, "r+b") as fp:
        fp.truncate(0)  # the manifest is created first and filled last
    assert spool.pending() == []


def test_damaged_dump_is_detected(tmp_path):
    spool = Spool(tmp_path)
    entry = spool.write(report(), raw_crash())
    with open(entry.dump_path("upload_file_minidump"), "r+b") as fp:
        fp.write(b"XXXX")
    with pytest.raises(CorruptSpoolEntry):
        spool.read(entry)


def hold_spool_and_die(root, crash_id, conn):
    spool = Spool(root)
    spool.write(report(crash_id), raw_crash(ProductName="orphan"))
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
    assert mine.read(adopted[0])[0]["ProductName"] == "orphan"
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(mine.dir)]


@pytest.mark.parametrize("damage", ["no manifest", "missing dump"])
def test_incomplete_orphans_are_dropped(tmp_path, damage):
    dead = Spool(tmp_path)
    entry = dead.write(report(), raw_crash())
    if damage == "no manifest":
        os.unlink(entry.manifest_path)
    else:
        os.unlink(entry.dump_path("other"))
    os.close(dead.owner.lock_fd)  # the worker dies: its lock goes, its folder stays
    survivor = Spool(tmp_path)
    assert len(os.listdir(tmp_path)) == 2
    assert survivor.adopt_orphans() == []
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(survivor.dir)]
