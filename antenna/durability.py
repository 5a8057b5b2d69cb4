"""Group commit: many coroutines wait for one filesystem sync instead of one fsync each.

A 400 KB fsync costs milliseconds of disk time, and the collector writes several files
per crash (spool, then dump, dump names and raw crash in storage).  Writers write
without syncing, then ``SyncBarrier.wait()``: the barrier runs one ``syncfs`` of the
filesystem for everyone waiting, in a thread, and wakes them all when it returns.  A
waiter is only woken by a sync that started after it called ``wait()``, so its own
writes (done before) are on disk when it returns.
"""

import ctypes
import ctypes.util
import os

import gevent
import gevent.event
import gevent.threadpool

_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def syncfs(fd):
    """Flush every dirty page and inode of the filesystem holding ``fd`` (Linux)."""
    if not hasattr(_LIBC, "syncfs"):
        os.sync()
        return
    if _LIBC.syncfs(fd) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


class SyncBarrier:
    """Batches sync requests for the filesystem that holds ``path``."""

    def __init__(self, path):
        os.makedirs(path, exist_ok=True)
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        self.thread = gevent.threadpool.ThreadPool(1)
        self.waiters = []
        self.wanted = gevent.event.Event()
        self.flusher = None
        self.syncs = 0

    def wait(self):
        """Return once everything written before this call is on disk."""
        done = gevent.event.AsyncResult()
        self.waiters.append(done)
        self.wanted.set()
        if self.flusher is None or self.flusher.dead:
            self.flusher = gevent.spawn(self.flush_loop)
        done.get()

    def flush_loop(self):
        while True:
            self.wanted.wait()
            self.wanted.clear()
            batch, self.waiters = self.waiters, []
            try:
                self.thread.apply(syncfs, (self.fd,))
            except Exception as exc:
                for done in batch:
                    done.set_exception(exc)
                continue
            self.syncs += 1
            for done in batch:
                done.set(True)

    def close(self):
        if self.flusher is not None:
            self.flusher.kill()
        os.close(self.fd)
