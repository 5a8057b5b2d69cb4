"""Durable local spool: a crash is on disk before we answer 200 for it.

Each gunicorn worker owns one spool folder (``antenna.workerdir``): when a worker dies,
even by ``kill -9``, any live worker adopts its folder, links its crashes into its own
folder and queues them again.

The folder is flat: a spooled crash is one file per dump, ``<crash_id>.<dump name>.dump``,
and its manifest ``<crash_id>.json``, which is the raw crash JSON exactly as storage
keeps it (its ``dump_checksums`` name the dumps).  The manifest is created first, to
reserve the crash id, and filled last: a manifest that does not parse, or whose dumps
are missing, was never answered for and is discarded.  Why flat files: this is the
collector's hottest disk path, and a folder per crash costs a ``mkdir``, an ``rmdir``
and a folder sync per crash, while on ext4 every freed inode makes later file creation
slower.  Dumps and manifest are plain files so that filesystem storage can hard-link
both instead of writing them a second time; removing the spooled names then frees no
inode at all.  The caller makes the files durable (``durability.SyncBarrier``) before
answering.
"""

import hashlib
import logging
import os

import orjson

from antenna.durability import sync_dir
from antenna.ext.crashstorage_base import json_bytes
from antenna.workerdir import WorkerDir

LOGGER = logging.getLogger(__name__)

MANIFEST_SUFFIX = ".json"
DUMP_SUFFIX = ".dump"
CRASH_ID_LENGTH = 36


class CorruptSpoolEntry(Exception):
    """A spooled crash that was never completely written, or was damaged since."""


def manifest_name(crash_id):
    return crash_id + MANIFEST_SUFFIX


def dump_file_name(crash_id, dump_name):
    return f"{crash_id}.{dump_name}{DUMP_SUFFIX}"


def is_manifest(file_name):
    """True for a spooled crash's manifest (the lock file and dumps are not)."""
    return len(file_name) == CRASH_ID_LENGTH + len(MANIFEST_SUFFIX) and file_name.endswith(
        MANIFEST_SUFFIX
    )


class SpoolEntry:
    """A spooled crash: the folder holding its files, its dump names and byte count."""

    __slots__ = ("crash_id", "folder", "size", "dump_names")

    def __init__(self, crash_id, folder, size, dump_names):
        self.crash_id = crash_id
        self.folder = folder
        self.size = size
        self.dump_names = dump_names

    def dump_path(self, name):
        return os.path.join(self.folder, dump_file_name(self.crash_id, name))

    @property
    def manifest_path(self):
        return os.path.join(self.folder, manifest_name(self.crash_id))

    @property
    def dump_paths(self):
        return [self.dump_path(name) for name in self.dump_names]

    @property
    def files(self):
        """Every file of the entry, manifest last (for syncing, then removing)."""
        return [*self.dump_paths, self.manifest_path]


def write_file(path, data):
    with open(path, "wb") as fp:
        fp.write(data)


def unlink_all(paths, ignored):
    """Remove every path, ignoring the ``ignored`` exceptions."""
    for path in paths:
        try:
            os.unlink(path)
        except ignored:
            pass


def load_manifest(path):
    """The raw crash a manifest holds; ``CorruptSpoolEntry`` if it is not complete."""
    try:
        with open(path, "rb") as fp:
            raw_crash = orjson.loads(fp.read())
        checksums = raw_crash["dump_checksums"]
        if not isinstance(checksums, dict):
            raise TypeError("dump_checksums is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptSpoolEntry(f"{os.path.basename(path)}: {exc}") from exc
    return raw_crash


class Spool:
    """This worker's spool folder, and adoption of dead workers' folders."""

    def __init__(self, root):
        self.owner = WorkerDir(root)
        self.root = self.owner.root
        self.dir = self.owner.path

    def entry_for(self, report):
        """Where this worker spools ``report``."""
        return SpoolEntry(report.crash_id, self.dir, report.size, list(report.dumps))

    def write(self, report, raw_crash):
        """Write one crash (not yet synced); blocking, so call it from a thread pool.

        ``raw_crash["dump_checksums"]`` must name every dump of ``report``.  Raises
        ``FileExistsError`` when this crash id is already spooled here.
        """
        entry = self.entry_for(report)
        with open(entry.manifest_path, "xb") as manifest:
            for name, data in report.dumps.items():
                write_file(entry.dump_path(name), data)
            manifest.write(json_bytes(raw_crash))
        return entry

    def raw_crash(self, entry):
        """The raw crash of a spooled crash, without reading its dumps."""
        return load_manifest(entry.manifest_path)

    def read(self, entry):
        """Load a spooled crash as (raw_crash, dumps); checks the dumps' checksums."""
        raw_crash = self.raw_crash(entry)
        dumps = {}
        for name, expected in raw_crash["dump_checksums"].items():
            try:
                with open(entry.dump_path(name), "rb") as fp:
                    dumps[name] = fp.read()
            except OSError as exc:
                raise CorruptSpoolEntry(f"dump {name} of {entry.crash_id}: {exc}") from exc
            if hashlib.sha256(dumps[name]).hexdigest() != expected:
                raise CorruptSpoolEntry(f"dump {name} of {entry.crash_id} is damaged")
        return raw_crash, dumps

    def remove(self, entry):
        """Drop the spooled names (storage may still hold the files through hard links)."""
        unlink_all(entry.files, FileNotFoundError)

    def discard(self, report):
        """Drop a crash whose write failed half-way (it was never answered for); the disk
        may be failing, so no error of it is raised."""
        unlink_all(self.entry_for(report).files, OSError)

    def pending(self):
        """Entries in this worker's own folder (normally those still queued)."""
        return list(self.entries_in(self.dir))

    def entries_in(self, folder):
        """Complete crashes of a worker folder (those being written are skipped)."""
        for name in self.owner.entries(folder):
            if not is_manifest(name):
                continue
            try:
                raw_crash = load_manifest(os.path.join(folder, name))
                dump_names = list(raw_crash["dump_checksums"])
                entry = SpoolEntry(name[:CRASH_ID_LENGTH], folder, 0, dump_names)
                entry.size = sum(os.path.getsize(path) for path in entry.dump_paths)
            except (CorruptSpoolEntry, OSError):
                continue
            yield entry

    def adopt_orphans(self):
        """Link crashes of dead workers into this folder; return their entries."""
        return self.owner.adopt_orphans(self.adopt_folder)

    def adopt_folder(self, folder):
        """Link a dead worker's complete crashes here; what is left was never answered.

        Links, not moves: should this process die half-way, the dead folder still holds
        every crash, so the next adopter gets them all again (at worst one is saved twice).
        """
        adopted = []
        taken = set()
        for entry in list(self.entries_in(folder)):
            mine = SpoolEntry(entry.crash_id, self.dir, entry.size, entry.dump_names)
            if os.path.exists(mine.manifest_path):
                LOGGER.warning(
                    "crash already spooled here; dropping the orphan copy",
                    extra={"crash_id": entry.crash_id},
                )
                continue
            for source, target in zip(entry.files, mine.files, strict=True):
                os.link(source, target)
            taken.add(entry.crash_id)
            adopted.append(mine)
        if adopted:
            sync_dir(self.dir)  # the new names must outlive the dead folder's removal
        for name in self.owner.entries(folder):
            if name[:CRASH_ID_LENGTH] not in taken:
                LOGGER.warning("dropping incomplete spooled file %s", name)
        return adopted

    def close(self):
        """Release the folder; leftovers stay for the next worker to adopt."""
        self.owner.close()
