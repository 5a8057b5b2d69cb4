"""Per-process folders that survive ``kill -9``: owned through an ``flock``, adopted when dead.

A process creates ``<root>/w-<uuid>/`` and holds an exclusive ``flock`` on its lock file
for its whole life.  The kernel drops that lock when the process dies, however it dies,
so any live process sharing ``root`` can take over a dead one's folder.  The crash spool
and the in-process processing queue both keep their durable state this way.
"""

import fcntl
import logging
import os
import shutil
import uuid

import gevent

from antenna.durability import sync_dir

LOGGER = logging.getLogger(__name__)

LOCK_NAME = ".lock"
PREFIX = "w-"


class WorkerDir:
    """This process's folder under ``root``."""

    def __init__(self, root):
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)
        self.path = os.path.join(self.root, f"{PREFIX}{uuid.uuid4().hex}")
        os.makedirs(self.path)
        self.lock_fd = os.open(os.path.join(self.path, LOCK_NAME), os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Files synced into the folder later only make their own names durable.
        sync_dir(self.root)

    def entries(self, folder=None):
        """Names in a worker folder (this one by default), lock file excluded."""
        return sorted(name for name in os.listdir(folder or self.path) if name != LOCK_NAME)

    def adopt_orphans(self, adopt_folder):
        """Call ``adopt_folder(folder)`` for each dead process's folder, then delete it.

        Returns the concatenation of what ``adopt_folder`` returned.
        """
        adopted = []
        for name in sorted(os.listdir(self.root)):
            folder = os.path.join(self.root, name)
            if folder == self.path or not name.startswith(PREFIX) or not os.path.isdir(folder):
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
                continue  # its process is alive
            try:
                if os.path.exists(lock_path):  # else another process adopted it meanwhile
                    adopted.extend(adopt_folder(folder))
                    shutil.rmtree(folder)
            except OSError as exc:
                LOGGER.warning("could not finish adopting %s: %s", folder, exc)
            finally:
                os.close(fd)
        return adopted

    @property
    def closed(self):
        return self.lock_fd is None

    def close(self):
        """Release the folder; an empty one is removed, leftovers wait for adoption."""
        if self.lock_fd is None:
            return
        if not self.entries():
            shutil.rmtree(self.path, ignore_errors=True)
        os.close(self.lock_fd)
        self.lock_fd = None


def adopt_periodically(interval, adopt, what):
    """Run ``adopt()`` every ``interval`` seconds for ever (spawn it); log, never die."""
    while True:
        gevent.sleep(interval)
        try:
            adopt()
        except Exception:
            LOGGER.exception("adopting %s failed", what)
