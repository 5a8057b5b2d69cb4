"""Crash storage interface: every backend writes the DESIGN.md key layout."""

import logging
from collections import deque

import orjson

from antenna import storage_keys

LOGGER = logging.getLogger(__name__)


class CrashIDNotFound(Exception):
    """The crash is not in storage."""


def json_bytes(document):
    """Raw and processed crashes as JSON; orjson is ~10x faster on big processed crashes."""
    return orjson.dumps(document)


def crash_keys(crash_id, dump_names):
    """Every key ``save_crash`` writes for a crash."""
    return [
        *(storage_keys.dump_key(crash_id, name) for name in dump_names),
        storage_keys.dump_names_key(crash_id),
        storage_keys.raw_crash_key(crash_id),
    ]


class KeyValueCrashStorage:
    """A backend is a small key/value store; the crash layout lives here, once.

    Subclasses implement ``put``, ``get`` (raise ``KeyError`` when absent),
    ``exists`` and ``check_health``.
    """

    # True when calls block the process (local disk): callers then use a thread pool and
    # call ``save_spooled_crash(crash_id, raw_crash, {dump name: spool file path},
    # raw crash spool file path)``.
    blocking_io = False

    def put(self, key, data):
        raise NotImplementedError

    def get(self, key):
        raise NotImplementedError

    def exists(self, key):
        raise NotImplementedError

    def check_health(self):
        """Return a list of problems (empty when healthy)."""
        return []

    def local_file(self, key):
        """A local file holding ``key``'s bytes, for a subprocess to read; None when the
        store is not a local disk, or the key is absent."""
        return None

    def sync(self, crash_id, dump_names):
        """Make what ``save_crash`` wrote durable; backends with their own durability pass."""

    def save_crash(self, crash_id, raw_crash, dumps):
        """Dumps first, then dump names, then the raw crash: its presence means complete."""
        for name, data in dumps.items():
            self.put(storage_keys.dump_key(crash_id, name), data)
        self.save_index(crash_id, raw_crash, list(dumps))

    def save_index(self, crash_id, raw_crash, dump_names):
        """Dump names, then the raw crash, once the dumps are stored."""
        self.save_dump_names(crash_id, dump_names)
        self.put(storage_keys.raw_crash_key(crash_id), json_bytes(raw_crash))

    def save_dump_names(self, crash_id, dump_names):
        names = [storage_keys.stored_dump_name(name) for name in dump_names]
        self.put(storage_keys.dump_names_key(crash_id), orjson.dumps(names))

    def crash_exists(self, crash_id):
        return self.exists(storage_keys.raw_crash_key(crash_id))

    def load_raw_crash(self, crash_id):
        try:
            return orjson.loads(self.get(storage_keys.raw_crash_key(crash_id)))
        except KeyError as exc:
            raise CrashIDNotFound(crash_id) from exc

    def load_dumps(self, crash_id):
        """Return {stored dump name: bytes}."""
        try:
            names = orjson.loads(self.get(storage_keys.dump_names_key(crash_id)))
        except KeyError as exc:
            raise CrashIDNotFound(crash_id) from exc
        return {name: self.get(storage_keys.dump_key(crash_id, name)) for name in names}

    def save_processed_crash(self, crash_id, processed_crash):
        self.put(storage_keys.processed_crash_key(crash_id), json_bytes(processed_crash))

    def load_processed_crash(self, crash_id):
        try:
            return orjson.loads(self.get(storage_keys.processed_crash_key(crash_id)))
        except KeyError as exc:
            raise CrashIDNotFound(crash_id) from exc


class NoOpCrashStorage(KeyValueCrashStorage):
    """Keeps the last ``MAX_CRASHES`` crashes in memory: for tests and dry runs."""

    MAX_CRASHES = 10

    class Config:
        pass

    def __init__(self, config):
        self.config = config.with_options(self)
        self.objects = {}
        self.crash_ids = deque()

    def put(self, key, data):
        self.objects[key] = bytes(data)

    def get(self, key):
        return self.objects[key]

    def exists(self, key):
        return key in self.objects

    def save_crash(self, crash_id, raw_crash, dumps):
        super().save_crash(crash_id, raw_crash, dumps)
        self.crash_ids.append(crash_id)
        while len(self.crash_ids) > self.MAX_CRASHES:
            old = self.crash_ids.popleft()
            self.objects = {k: v for k, v in self.objects.items() if not k.endswith(old)}
