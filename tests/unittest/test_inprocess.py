"""In-process processing: published ids are processed, and a dead worker's backlog is not lost."""

import multiprocessing
import os

import gevent
from everett.manager import ConfigManager

from antenna.durability import SyncBarrier
from antenna.workerdir import adopt_periodically
from processor.inprocess import InProcessCrashPublish

IDS = [f"{i:08x}-cbbf-4589-a673-34f800160918" for i in range(5)]


class RecordingProcessor:
    """Stands in for Processor: remembers what it was asked to process."""

    def __init__(self, fail=()):
        self.processed = []
        self.fail = set(fail)

    def config(self, key):
        return {"concurrency": 2}[key]

    def process_crash(self, crash_id):
        gevent.sleep(0.01)
        if crash_id in self.fail:
            raise RuntimeError("storage down")
        self.processed.append(crash_id)


def publisher(queue_dir, processor):
    config = ConfigManager.from_dict({"QUEUE_DIR": str(queue_dir)})
    pub = InProcessCrashPublish(config)
    pub.processor = processor
    pub.adopt_orphans()
    pub.workers = [gevent.spawn(pub.worker_loop) for _ in range(2)]
    pub.workers.append(gevent.spawn(adopt_periodically, 0.2, pub.adopt_orphans, "test"))
    return pub


def test_published_crashes_are_processed_and_markers_removed(tmp_path):
    processor = RecordingProcessor(fail=[IDS[1]])
    pub = publisher(tmp_path, processor)
    for crash_id in IDS:
        pub.publish(crash_id)
    assert pub.join(5)
    assert sorted(processor.processed) == sorted(IDS[:1] + IDS[2:])
    assert pub.folder.entries() == [IDS[1]]  # a failure stays queued for a later worker


def test_a_marker_is_synced_before_its_crash_is_queued(tmp_path):
    """The crashmover drops the spooled crash once publish returns: the marker must be on disk."""
    pub = publisher(tmp_path, RecordingProcessor())
    synced = []
    pub.barrier = SyncBarrier(lambda paths: synced.append((list(paths), pub.pending)))
    pub.publish(IDS[0])
    assert synced == [([pub.marker(IDS[0])], 0)]
    assert pub.join(5)


def die_with_a_backlog(queue_dir, conn):
    config = ConfigManager.from_dict({"QUEUE_DIR": str(queue_dir)})
    pub = InProcessCrashPublish(config)
    for crash_id in IDS:
        os.close(os.open(pub.marker(crash_id), os.O_CREAT | os.O_WRONLY))
    conn.send("queued")
    conn.recv()
    os._exit(0)


def test_a_killed_workers_backlog_is_processed_by_a_live_one(tmp_path):
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("fork").Process(target=die_with_a_backlog, args=(tmp_path, child))
    proc.start()
    assert parent.recv() == "queued"
    processor = RecordingProcessor()
    pub = publisher(tmp_path, processor)
    assert processor.processed == []  # the other worker is alive: hands off
    proc.kill()
    proc.join()
    gevent.sleep(0.5)  # the adopter runs every 0.2 s
    assert pub.join(5)
    assert sorted(processor.processed) == sorted(IDS)
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(pub.folder.path)]
