"""Processing steps, each a small rule with one job, in the style of Socorro's processor.

A rule reads the raw crash and dumps and adds fields to the processed crash.  It
may add notes; it never raises (the pipeline turns an unexpected exception into a
note and ``success: false``), so one broken step never hides the rest.
"""

import contextlib
import hashlib
import logging
import os
import re
import tempfile

from antenna import storage_keys
from antenna.product import PRODUCT_ANNOTATIONS, VERSION_ANNOTATIONS, first_annotation
from processor.minidump_modules import parse_modules
from processor.stackwalk_output import parse_stackwalk

LOGGER = logging.getLogger(__name__)

MINIDUMP_NAME = storage_keys.MINIDUMP_STORED_NAME
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class Rule:
    """Base class; ``action`` mutates ``processed`` and appends to ``notes``."""

    def action(self, crash_id, raw_crash, dumps, processed, notes):
        raise NotImplementedError


class CopyAnnotationsRule(Rule):
    """Product facts the client reported, under the processed crash's names.

    Each field takes the first non-empty annotation of its list (for product and version,
    whichever crash reporter sent them: see ``antenna.product``).
    """

    FIELDS = {
        "product": PRODUCT_ANNOTATIONS,
        "version": VERSION_ANNOTATIONS,
        "release_channel": ("ReleaseChannel",),
        "build": ("BuildID",),
    }

    def action(self, crash_id, raw_crash, dumps, processed, notes):
        for field, annotations in self.FIELDS.items():
            processed[field] = first_annotation(raw_crash, annotations)


def minidump_sha256(raw_crash, dump):
    """The collector hashed the dump when it stored it (``dump_checksums``); hashing a
    Firefox-sized dump again costs milliseconds, so that value is used when present."""
    checksums = raw_crash.get("dump_checksums")
    recorded = checksums.get(storage_keys.MINIDUMP_FIELD) if isinstance(checksums, dict) else None
    if isinstance(recorded, str) and SHA256_RE.match(recorded):
        return recorded
    return hashlib.sha256(dump).hexdigest()


@contextlib.contextmanager
def temp_dump_file(crash_id, dump, temp_dir):
    """The dump in a temporary file, for storage that has no local file of it."""
    fd, path = tempfile.mkstemp(prefix=f"{crash_id}.", suffix=".dmp", dir=temp_dir)
    try:
        with os.fdopen(fd, "wb") as fp:
            fp.write(dump)
        yield path
    finally:
        os.unlink(path)


class StackwalkRule(Rule):
    """Fetches symbols, runs Breakpad's stackwalker and parses its output.

    ``local_file(key)`` is the crash storage's: with filesystem storage the stackwalker
    reads the stored dump where it is, instead of a temporary copy (a Firefox dump is
    several MB).
    """

    def __init__(self, stackwalker, symbols, metrics, temp_dir=None, local_file=None):
        self.stackwalker = stackwalker
        self.symbols = symbols
        self.metrics = metrics
        self.temp_dir = temp_dir
        self.local_file = local_file

    def dump_file(self, crash_id, dump):
        """A context manager yielding a path to the crash's minidump."""
        key = storage_keys.dump_key(crash_id, MINIDUMP_NAME)
        stored = self.local_file(key) if self.local_file else None
        if stored:
            return contextlib.nullcontext(stored)
        return temp_dump_file(crash_id, dump, self.temp_dir)

    def action(self, crash_id, raw_crash, dumps, processed, notes):
        processed.update(parse_stackwalk(""))  # every field present, even without a dump
        dump = dumps.get(MINIDUMP_NAME)
        if dump is None:
            notes.append("no minidump in this crash report")
            processed["stackwalker"] = {"status": "no minidump"}
            return
        processed["minidump_sha256"] = minidump_sha256(raw_crash, dump)
        modules = parse_modules(dump)
        with self.dump_file(crash_id, dump) as path:
            with self.metrics.timer("symbols.time"):
                symbol_dirs = self.symbols.prepare(modules)
            result = self.stackwalker.walk(path, symbol_dirs)
        self.metrics.timing("stackwalk.time", result.seconds * 1000.0)
        processed["stackwalker"] = result.as_dict()
        if not result.ok:
            notes.append(f"stackwalker failed: {result.status}")
        processed.update(parse_stackwalk(result.output, modules))
        if result.ok and not any(t["frames"] for t in processed["threads"]):
            notes.append("stackwalker found no frames")
        if processed["missing_symbols"]:
            notes.append(f"missing symbols for {len(processed['missing_symbols'])} module(s)")


class SignatureRule(Rule):
    """Socorro-style signature from the crashing thread (siggen)."""

    def __init__(self, signature_maker):
        self.signature_maker = signature_maker

    def action(self, crash_id, raw_crash, dumps, processed, notes):
        processed.update(self.signature_maker.generate(processed, raw_crash))
