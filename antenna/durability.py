"""Group commit: coroutines hand their freshly written files to one flusher thread.

Writers write without syncing and call ``barrier_for(folder).wait(paths)``; the
filesystem's flusher thread then makes the whole waiting batch durable at once and
wakes it.  There is one barrier per filesystem per process, so the spool and
filesystem storage share their syncs when they share a disk.

How a batch is synced: on Linux, one ``syncfs`` of the filesystem (every dirty file,
inode and folder, then one device cache flush).  Each ``fsync``/``fdatasync`` call
costs its own cache flush (on ext4 without a journal, as on the machines we measure
on, nothing batches them), and a crash needs about six of them (dumps, manifest,
storage names, their folders): per-file syncing saturated the flusher at about
90 crashes/s, ``syncfs`` at several hundred.  The price is that other writers' dirty
data on the same filesystem is flushed along; where ``syncfs`` is missing, each file
is ``fdatasync``'d and each folder ``fsync``'d instead.
"""

import ctypes
import os

import gevent
import gevent.event
import gevent.threadpool

_syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)


def sync_files(paths):
    """fdatasync each file, then fsync each distinct parent folder."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)
    for folder in {os.path.dirname(path) for path in paths}:
        sync_dir(folder)


def sync_dir(folder):
    """Make the names in ``folder`` (new, renamed or removed files) durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemSync:
    """``syncfs`` of the filesystem holding ``folder``, whatever paths a batch names.

    The folder stays open so that a write error the kernel records on the filesystem
    is reported by the next sync after it, once.
    """

    def __init__(self, folder):
        self.fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)

    def __call__(self, paths):
        if _syncfs(self.fd) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"syncfs: {os.strerror(errno)}")


class SyncBarrier:
    """Batches the sync requests of many coroutines into one thread's work.

    ``sync(paths)`` makes a batch durable: ``sync_files`` by default.
    """

    def __init__(self, sync=sync_files):
        self.sync = sync
        self.thread = gevent.threadpool.ThreadPool(1)
        self.waiting = []
        self.wanted = gevent.event.Event()
        self.flusher = None
        self.batches = 0

    def wait(self, paths):
        """Return once ``paths`` (already written and closed) are on disk."""
        done = gevent.event.AsyncResult()
        self.waiting.append((paths, done))
        self.wanted.set()
        if self.flusher is None or self.flusher.dead:
            self.flusher = gevent.spawn(self.flush_loop)
        done.get()

    def flush_loop(self):
        while True:
            self.wanted.wait()
            self.wanted.clear()
            batch, self.waiting = self.waiting, []
            paths = [path for paths, _ in batch for path in paths]
            try:
                self.thread.apply(self.sync, (paths,))
            except Exception as exc:
                for _, done in batch:
                    done.set_exception(exc)
                continue
            self.batches += 1
            for _, done in batch:
                done.set(True)

    def close(self):
        if self.flusher is not None:
            self.flusher.kill()


_barriers = {}


def barrier_for(folder):
    """The barrier of the filesystem holding ``folder`` (one per filesystem per process)."""
    device = os.stat(folder).st_dev
    barrier = _barriers.get(device)
    if barrier is None:
        barrier = SyncBarrier(FilesystemSync(folder) if _syncfs else sync_files)
        _barriers[device] = barrier
    return barrier
