"""Filesystem crash storage: S3's key layout mirrored as paths under a root folder."""

import errno
import os

from everett.manager import Option, parse_bool

from antenna import storage_keys
from antenna.durability import barrier_for
from antenna.ext.crashstorage_base import KeyValueCrashStorage, crash_keys
from antenna.fsutil import atomic_link, atomic_write


class FSCrashStorage(KeyValueCrashStorage):
    """For one box, development and tests; writes are atomic (tmp file + rename)."""

    # Disk writes and fsync block; crashmovers run them in gevent's thread pool.
    blocking_io = True

    class Config:
        fs_root = Option(
            default="./data/crashes",
            doc="Folder that holds the crash files, in the same key layout as S3.",
        )
        fs_fsync = Option(
            default="true",
            parser=parse_bool,
            doc=(
                "Sync saved files to disk before a crash counts as saved and leaves the "
                "spool (group commit, shared with the spool when both are on one filesystem)."
            ),
        )

    def __init__(self, config):
        self.config = config.with_options(self)
        self.root = os.path.abspath(self.config("fs_root"))
        os.makedirs(self.root, exist_ok=True)
        self.barrier = barrier_for(self.root) if self.config("fs_fsync") else None

    def path(self, key):
        return os.path.join(self.root, *key.split("/"))

    def put(self, key, data):
        atomic_write(self.path(key), data)

    def save_spooled_crash(self, crash_id, raw_crash, dump_files, raw_crash_file):
        """Hard-link the spooled dumps and raw crash instead of writing them again.

        The spool already made their bytes durable; only the new names need syncing.
        ``raw_crash_file`` holds exactly ``json_bytes(raw_crash)``; it is linked last,
        since a stored raw crash means a complete crash.
        """
        for name, source in dump_files.items():
            self.link_or_copy(source, self.path(storage_keys.dump_key(crash_id, name)))
        self.save_dump_names(crash_id, list(dump_files))
        self.link_or_copy(raw_crash_file, self.path(storage_keys.raw_crash_key(crash_id)))

    @staticmethod
    def link_or_copy(source, target):
        """Link when spool and storage share a filesystem, else write a copy."""
        try:
            atomic_link(source, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            with open(source, "rb") as fp:
                atomic_write(target, fp.read())

    def sync(self, crash_id, dump_names):
        if self.barrier:
            self.barrier.wait([self.path(key) for key in crash_keys(crash_id, dump_names)])

    def get(self, key):
        try:
            with open(self.path(key), "rb") as fp:
                return fp.read()
        except FileNotFoundError as exc:
            raise KeyError(key) from exc

    def exists(self, key):
        return os.path.exists(self.path(key))

    def local_file(self, key):
        path = self.path(key)
        return path if os.path.isfile(path) else None

    def check_health(self):
        if not os.access(self.root, os.W_OK):
            return [f"crash storage root {self.root} is not writable"]
        return []
