"""Durable local spool: a crash is on disk before we answer 200 for it.

Each gunicorn worker owns one spool folder (``antenna.workerdir``): when a worker dies,
even by ``kill -9``, any live worker adopts its folder, moves its crashes into its own
folder and queues them again.

A spooled crash is a folder ``<crash_id>/`` holding one file per dump and, written
last, ``crash.json`` (raw crash, dump names, sizes and checksums).  Without a valid
``crash.json`` whose dumps all match, the crash was never answered for and is
discarded.  Dumps are plain files so that filesystem storage can hard-link them
instead of writing every dump a second time.  The caller makes the files durable
(``durability.SyncBarrier``) before answering.
"""

import hashlib
import json
import logging
import os
import shutil

from antenna.workerdir import WorkerDir

LOGGER = logging.getLogger(__name__)

MANIFEST = "crash.json"
DUMP_SUFFIX = ".dump"


class CorruptSpoolEntry(Exception):
    """A spooled crash that was never completely written."""


class SpoolEntry:
    """A spooled crash: its folder, its files and how many bytes it holds."""

    __slots__ = ("crash_id", "path", "size", "dump_names")

    def __init__(self, crash_id, path, size, dump_names):
        self.crash_id = crash_id
        self.path = path
        self.size = size
        self.dump_names = dump_names

    def dump_path(self, name):
        return os.path.join(self.path, name + DUMP_SUFFIX)

    @property
    def files(self):
        """Every file of the entry, manifest last, plus its folder (for syncing)."""
        dumps = [self.dump_path(name) for name in self.dump_names]
        return [*dumps, os.path.join(self.path, MANIFEST), self.path]


def write_file(path, data):
    with open(path, "wb") as fp:
        fp.write(data)


def read_manifest(folder):
    """Load and check a spooled crash's manifest against its dump files."""
    try:
        with open(os.path.join(folder, MANIFEST), "rb") as fp:
            manifest = json.load(fp)
        for name, size in manifest["dumps"]:
            if os.path.getsize(os.path.join(folder, name + DUMP_SUFFIX)) != size:
                raise CorruptSpoolEntry(f"dump {name} has the wrong size")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptSpoolEntry(str(exc)) from exc
    return manifest


class Spool:
    """This worker's spool folder, and adoption of dead workers' folders."""

    def __init__(self, root):
        self.owner = WorkerDir(root)
        self.root = self.owner.root
        self.dir = self.owner.path

    def write(self, report, raw_crash):
        """Write one crash (not yet synced); blocking, so call it from a thread pool."""
        folder = os.path.join(self.dir, report.crash_id)
        os.mkdir(folder)
        for name, data in report.dumps.items():
            write_file(os.path.join(folder, name + DUMP_SUFFIX), data)
        manifest = {
            "crash_id": report.crash_id,
            "raw_crash": raw_crash,
            "dumps": [[name, len(data)] for name, data in report.dumps.items()],
        }
        write_file(os.path.join(folder, MANIFEST), json.dumps(manifest).encode("utf-8"))
        return SpoolEntry(report.crash_id, folder, report.size, list(report.dumps))

    def raw_crash(self, entry):
        """The raw crash of a spooled crash, without reading its dumps."""
        return read_manifest(entry.path)["raw_crash"]

    def read(self, entry):
        """Load a spooled crash as (raw_crash, dumps); checks the dumps' checksums."""
        manifest = read_manifest(entry.path)
        raw_crash = manifest["raw_crash"]
        dumps = {}
        for name, _size in manifest["dumps"]:
            with open(entry.dump_path(name), "rb") as fp:
                dumps[name] = fp.read()
            expected = raw_crash.get("dump_checksums", {}).get(name)
            if expected and hashlib.sha256(dumps[name]).hexdigest() != expected:
                raise CorruptSpoolEntry(f"dump {name} of {entry.crash_id} is damaged")
        return raw_crash, dumps

    def remove(self, entry):
        shutil.rmtree(entry.path, ignore_errors=True)

    def discard(self, crash_id):
        """Drop a crash whose write failed half-way (it was never answered for)."""
        shutil.rmtree(os.path.join(self.dir, crash_id), ignore_errors=True)

    def pending(self):
        """Entries in this worker's own folder (normally those still queued)."""
        return list(self.entries_in(self.dir))

    def entries_in(self, folder):
        """Complete crashes of a worker folder (those being written are skipped)."""
        for name in self.owner.entries(folder):
            path = os.path.join(folder, name)
            if not os.path.isdir(path):
                continue
            try:
                manifest = read_manifest(path)
            except CorruptSpoolEntry:
                continue
            names = [dump_name for dump_name, _ in manifest["dumps"]]
            size = sum(size for _, size in manifest["dumps"])
            yield SpoolEntry(name, path, size, names)

    def adopt_orphans(self):
        """Move crashes of dead workers into this folder; return their entries."""
        return self.owner.adopt_orphans(self.adopt_folder)

    def adopt_folder(self, folder):
        """Move a dead worker's complete crashes here; what is left was never answered."""
        adopted = []
        for entry in list(self.entries_in(folder)):
            target = os.path.join(self.dir, entry.crash_id)
            os.replace(entry.path, target)
            adopted.append(SpoolEntry(entry.crash_id, target, entry.size, entry.dump_names))
        for name in self.owner.entries(folder):
            LOGGER.warning("dropping incomplete spooled crash %s", name, extra={"crash_id": name})
        return adopted

    def close(self):
        """Release the folder; leftovers stay for the next worker to adopt."""
        self.owner.close()
