"""Durable local spool: a crash is on disk before we answer 200 for it.

Each gunicorn worker owns one spool folder (``w-<uuid>``) and holds an exclusive
``flock`` on its lock file for its whole life.  The kernel drops that lock when the
worker dies, even by ``kill -9``, so any live worker can adopt a dead worker's
folder: move its files into its own folder and queue them again.  A spool file
is written in one go; the caller makes it durable (``durability.SyncBarrier``)
before answering.  A file without its trailer was never answered for and is discarded.
"""

import fcntl
import hashlib
import json
import logging
import os
import struct
import uuid

LOGGER = logging.getLogger(__name__)

MAGIC = b"ANTSPOOL1\n"
TRAILER = b"\nEND\n"
SUFFIX = ".crash"
LOCK_NAME = ".lock"


class SpoolEntry:
    """A spooled crash: where it is and how many bytes it holds."""

    __slots__ = ("crash_id", "path", "size")

    def __init__(self, crash_id, path, size):
        self.crash_id = crash_id
        self.path = path
        self.size = size


class CorruptSpoolFile(Exception):
    """A spool file that was never completely written."""


def encode(report, raw_crash):
    """Serialise a crash: magic, header length, JSON header, dumps, trailer."""
    dumps = list(report.dumps.items())
    header = json.dumps(
        {
            "crash_id": report.crash_id,
            "raw_crash": raw_crash,
            "dumps": [[name, len(data), report.checksums.get(name)] for name, data in dumps],
        }
    ).encode("utf-8")
    return [MAGIC, struct.pack(">Q", len(header)), header, *(data for _, data in dumps), TRAILER]


def decode(blob):
    """Inverse of ``encode``: (crash_id, raw_crash, {name: bytes}); checks every checksum."""
    if not blob.startswith(MAGIC) or not blob.endswith(TRAILER):
        raise CorruptSpoolFile("missing magic or trailer")
    offset = len(MAGIC)
    (header_len,) = struct.unpack(">Q", blob[offset : offset + 8])
    offset += 8
    header = json.loads(blob[offset : offset + header_len])
    offset += header_len
    dumps = {}
    for name, length, checksum in header["dumps"]:
        data = blob[offset : offset + length]
        offset += length
        if len(data) != length or (checksum and hashlib.sha256(data).hexdigest() != checksum):
            raise CorruptSpoolFile(f"dump {name} is damaged")
        dumps[name] = data
    if offset + len(TRAILER) != len(blob):
        raise CorruptSpoolFile("length mismatch")
    return header["crash_id"], header["raw_crash"], dumps


def write_all(fd, chunks):
    """One ``writev`` for the whole crash; loop only if the kernel wrote less."""
    written = os.writev(fd, chunks)
    total = sum(len(chunk) for chunk in chunks)
    if written < total:
        rest = memoryview(b"".join(chunks))[written:]
        while rest:
            rest = rest[os.write(fd, rest) :]


class Spool:
    """This worker's spool folder, and adoption of dead workers' folders."""

    def __init__(self, root):
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)
        self.dir = os.path.join(self.root, f"w-{uuid.uuid4().hex}")
        os.makedirs(self.dir)
        self.lock_fd = os.open(os.path.join(self.dir, LOCK_NAME), os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def path_for(self, crash_id):
        return os.path.join(self.dir, crash_id + SUFFIX)

    def write(self, report, raw_crash):
        """Write one crash (not yet synced); blocking, so call it from a thread pool."""
        path = self.path_for(report.crash_id)
        chunks = encode(report, raw_crash)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            write_all(fd, chunks)
        finally:
            os.close(fd)
        return SpoolEntry(report.crash_id, path, sum(len(c) for c in chunks))

    def read(self, entry):
        """Load a spooled crash as (raw_crash, dumps)."""
        with open(entry.path, "rb") as fp:
            crash_id, raw_crash, dumps = decode(fp.read())
        return raw_crash, dumps

    def remove(self, entry):
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            LOGGER.warning("spool file already gone", extra={"crash_id": entry.crash_id})

    def pending(self):
        """Entries in this worker's own folder (normally those still queued)."""
        return list(self.entries_in(self.dir))

    def entries_in(self, folder):
        for name in sorted(os.listdir(folder)):
            if name.endswith(SUFFIX):
                path = os.path.join(folder, name)
                yield SpoolEntry(name[: -len(SUFFIX)], path, os.path.getsize(path))

    def adopt_orphans(self):
        """Move crashes of dead workers into this folder; return their entries.

        Damaged files were never acknowledged to a client; they are logged and dropped.
        """
        adopted = []
        for name in sorted(os.listdir(self.root)):
            folder = os.path.join(self.root, name)
            if folder == self.dir or not name.startswith("w-") or not os.path.isdir(folder):
                continue
            lock_path = os.path.join(folder, LOCK_NAME)
            try:
                fd = os.open(lock_path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # its worker is alive
            if not os.path.exists(lock_path):
                os.close(fd)
                continue  # another worker adopted it meanwhile
            try:
                adopted.extend(self.adopt_folder(folder))
                os.unlink(lock_path)
                os.rmdir(folder)
            except OSError as exc:
                LOGGER.warning("could not finish adopting %s: %s", folder, exc)
            finally:
                os.close(fd)
        return adopted

    def adopt_folder(self, folder):
        adopted = []
        for entry in list(self.entries_in(folder)):
            try:
                with open(entry.path, "rb") as fp:
                    decode(fp.read())
            except (CorruptSpoolFile, ValueError, struct.error) as exc:
                LOGGER.warning(
                    "dropping incomplete spool file %s: %s", entry.path, exc,
                    extra={"crash_id": entry.crash_id},
                )
                os.unlink(entry.path)
                continue
            target = self.path_for(entry.crash_id)
            os.replace(entry.path, target)
            adopted.append(SpoolEntry(entry.crash_id, target, entry.size))
        for name in os.listdir(folder):
            if name != LOCK_NAME:
                os.unlink(os.path.join(folder, name))
        return adopted

    def close(self):
        """Release the lock; leftovers stay for the next worker to adopt.

        An empty folder is removed so clean restarts don't pile up folders.
        """
        if self.lock_fd is None:
            return
        if not self.pending():
            os.unlink(os.path.join(self.dir, LOCK_NAME))
            os.rmdir(self.dir)
        os.close(self.lock_fd)
        self.lock_fd = None
