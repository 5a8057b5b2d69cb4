"""Group commit: many waiters, few sync batches, errors reach every waiter."""

import gevent
import pytest

from antenna.durability import SyncBarrier


def test_concurrent_waiters_share_batches(tmp_path):
    barrier = SyncBarrier()
    paths = []
    for index in range(50):
        path = tmp_path / f"f{index}"
        path.write_bytes(b"x" * 1000)
        paths.append(str(path))
    greenlets = [gevent.spawn(barrier.wait, [path]) for path in paths]
    gevent.joinall(greenlets, timeout=10, raise_error=True)
    assert all(g.successful() for g in greenlets)
    assert 1 <= barrier.batches < 50
    barrier.close()


def test_a_failed_sync_raises_in_every_waiter_of_the_batch(tmp_path):
    barrier = SyncBarrier()
    missing = str(tmp_path / "never-written")
    greenlets = [gevent.spawn(barrier.wait, [missing]) for _ in range(3)]
    gevent.joinall(greenlets, timeout=10)
    for greenlet in greenlets:
        with pytest.raises(FileNotFoundError):
            greenlet.get()
    ok = tmp_path / "ok"
    ok.write_bytes(b"y")
    barrier.wait([str(ok)])  # the flusher survives errors
    barrier.close()
