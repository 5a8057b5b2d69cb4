"""Group commit: many waiters, few sync batches, errors reach every waiter."""

import os

import gevent
import pytest

from antenna import durability
from antenna.durability import SyncBarrier, barrier_for, sync_files


def written_files(folder, count):
    paths = []
    for index in range(count):
        path = folder / f"f{index}"
        path.write_bytes(b"x" * 1000)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("how", ["per file", "syncfs"])
def test_concurrent_waiters_share_batches(tmp_path, how):
    if how == "syncfs" and durability._syncfs is None:
        pytest.skip("syncfs is Linux-only")
    sync = sync_files if how == "per file" else durability.FilesystemSync(str(tmp_path))
    barrier = SyncBarrier(sync)
    greenlets = [gevent.spawn(barrier.wait, [path]) for path in written_files(tmp_path, 50)]
    gevent.joinall(greenlets, timeout=10, raise_error=True)
    assert all(g.successful() for g in greenlets)
    assert 1 <= barrier.batches < 50


def test_a_failed_sync_raises_in_every_waiter_of_the_batch(tmp_path):
    barrier = SyncBarrier()
    missing = str(tmp_path / "never-written")
    greenlets = [gevent.spawn(barrier.wait, [missing]) for _ in range(3)]
    gevent.joinall(greenlets, timeout=10)
    for greenlet in greenlets:
        with pytest.raises(FileNotFoundError):
            greenlet.get()
    barrier.wait(written_files(tmp_path, 1))  # the flusher survives errors


def test_one_barrier_per_filesystem(tmp_path):
    (tmp_path / "spool").mkdir()
    (tmp_path / "crashes").mkdir()
    spool = barrier_for(str(tmp_path / "spool"))
    assert barrier_for(str(tmp_path / "crashes")) is spool
    if os.path.isdir("/dev/shm") and os.stat("/dev/shm").st_dev != os.stat(tmp_path).st_dev:
        assert barrier_for("/dev/shm") is not spool


def test_a_forked_child_gets_its_own_barrier(tmp_path):
    parent = barrier_for(str(tmp_path))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's flusher thread does not exist here
        child = barrier_for(str(tmp_path))
        if child is not parent:  # (waiting on the parent's would hang)
            child.wait(written_files(tmp_path, 1))
            os.write(write_end, b"1")
        os._exit(0)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    assert os.read(read_end, 1) == b"1"
    assert status == 0
