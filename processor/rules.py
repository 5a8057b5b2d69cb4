"""Processing steps, each a small rule with one job, in the style of Socorro's processor.

A rule reads the raw crash and dumps and adds fields to the processed crash.  It
may add notes; it never raises (the pipeline turns an unexpected exception into a
note and ``success: false``), so one broken step never hides the rest.
"""

import hashlib
import logging
import os
import tempfile

from processor.minidump_modules import parse_modules
from processor.stackwalk_output import parse_stackwalk

LOGGER = logging.getLogger(__name__)

MINIDUMP_NAME = "dump"


class Rule:
    """Base class; ``action`` mutates ``processed`` and appends to ``notes``."""

    def action(self, crash_id, raw_crash, dumps, processed, notes):
        raise NotImplementedError


class CopyAnnotationsRule(Rule):
    """Product facts the client reported, under the processed crash's names."""

    FIELDS = {
        "product": "ProductName",
        "version": "Version",
        "release_channel": "ReleaseChannel",
        "build": "BuildID",
    }

    def action(self, crash_id, raw_crash, dumps, processed, notes):
        for field, annotation in self.FIELDS.items():
            value = raw_crash.get(annotation)
            processed[field] = value if isinstance(value, str) and value else None


class StackwalkRule(Rule):
    """Fetches symbols, runs Breakpad's stackwalker and parses its output."""

    def __init__(self, stackwalker, symbols, metrics, temp_dir=None):
        self.stackwalker = stackwalker
        self.symbols = symbols
        self.metrics = metrics
        self.temp_dir = temp_dir

    def action(self, crash_id, raw_crash, dumps, processed, notes):
        processed.update(parse_stackwalk(""))  # every field present, even without a dump
        dump = dumps.get(MINIDUMP_NAME)
        if dump is None:
            notes.append("no minidump in this crash report")
            processed["stackwalker"] = {"status": "no minidump"}
            return
        processed["minidump_sha256"] = hashlib.sha256(dump).hexdigest()
        modules = parse_modules(dump)
        fd, path = tempfile.mkstemp(prefix=f"{crash_id}.", suffix=".dmp", dir=self.temp_dir)
        try:
            with os.fdopen(fd, "wb") as fp:
                fp.write(dump)
            with self.metrics.timer("symbols.time"):
                symbol_dirs = self.symbols.prepare(modules)
            result = self.stackwalker.walk(path, symbol_dirs)
        finally:
            os.unlink(path)
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
