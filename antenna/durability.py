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

import _queue
import ctypes
import os

import gevent
import gevent.event
import gevent.monkey

_syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
# A real thread even in a monkey-patched process (where ``threading`` makes greenlets).
_start_native_thread = gevent.monkey.get_original("_thread", "start_new_thread")


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
    """Batches the sync requests of many coroutines into one native thread's work.

    The flusher is a plain thread looping on its own: as soon as a sync returns it takes
    whatever piled up meanwhile and syncs again, then hands the finished batch to the
    hub through an async watcher.  Driving each sync from a greenlet instead (thread
    pool round trips) made every flush wait for the busy hub's next loop turn: the
    kernel's ``syncfs`` took 11 ms, the hub saw 39 ms, and that capped the collector.

    ``sync(paths)`` makes a batch durable: ``sync_files`` by default.
    """

    def __init__(self, sync=sync_files):
        self.sync = sync
        # C queues: their blocking get waits in the flusher thread, never on the hub.
        self.requests = _queue.SimpleQueue()
        self.finished = _queue.SimpleQueue()
        self.delivery = gevent.get_hub().loop.async_()
        self.delivery.start(self.deliver)
        self.delivery.ref = False  # only waiters keep the hub running, not an idle barrier
        self.waiters = 0
        self.batches = 0
        _start_native_thread(self.flush_forever, ())

    def wait(self, paths):
        """Return once ``paths`` (already written and closed) are on disk."""
        done = gevent.event.AsyncResult()
        self.waiters += 1
        self.delivery.ref = True
        self.requests.put((paths, done))
        done.get()

    def flush_forever(self):
        """The flusher thread: one sync per batch of whatever requests are waiting."""
        while True:
            batch = [self.requests.get()]
            while True:
                try:
                    batch.append(self.requests.get_nowait())
                except _queue.Empty:
                    break
            try:
                self.sync([path for paths, _ in batch for path in paths])
                error = None
            except Exception as exc:
                error = exc
            self.finished.put((batch, error))
            self.delivery.send()

    def deliver(self):
        """On the hub: wake the waiters of every finished batch."""
        while True:
            try:
                batch, error = self.finished.get_nowait()
            except _queue.Empty:
                return
            self.batches += 1
            self.waiters -= len(batch)
            self.delivery.ref = self.waiters > 0
            for _, done in batch:
                if error is None:
                    done.set(True)
                else:
                    done.set_exception(error)


_barriers = {}
# A forked child has no flusher thread: it must build its own barriers.
os.register_at_fork(after_in_child=_barriers.clear)


def barrier_for(folder):
    """The barrier of the filesystem holding ``folder`` (one per filesystem per process)."""
    device = os.stat(folder).st_dev
    barrier = _barriers.get(device)
    if barrier is None:
        barrier = SyncBarrier(FilesystemSync(folder) if _syncfs else sync_files)
        _barriers[device] = barrier
    return barrier
