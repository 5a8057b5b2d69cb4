"""Turns a ``POST /submit`` body into annotations and dumps, or a precise rejection.

Breakpad, Crashpad and Electron send ``multipart/form-data`` (some ``multipart/mixed``),
maybe gzip'd.  The body is streamed through Falcon's multipart reader, with the gzip
layer decompressing on the fly, so the only full copy we hold is each dump's bytes.
Every limit is enforced while reading, so a gzip bomb stops at the cap.
"""

import hashlib
import json
import re
import zlib

from falcon.media.multipart import MultipartForm, MultipartParseError, MultipartParseOptions
from falcon.util import BufferedReader

from antenna.rawcrash import CrashReport

SUPPORTED_CONTENT_TYPES = ("multipart/form-data", "multipart/mixed")

# Dump names end up in storage keys and file paths: keep them boring.
DUMP_NAME_UNSAFE_RE = re.compile(r"[^A-Za-z0-9_.-]")
MAX_DUMP_NAME_LENGTH = 64
DEFAULT_DUMP_NAME = "upload_file_minidump"
READ_CHUNK = 256 * 1024


class MalformedCrashReport(Exception):
    """The client sent something we can't accept; ``reason`` goes into the response."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class CappedReader:
    """Raw body reader that refuses to read past ``limit`` bytes."""

    def __init__(self, stream, limit):
        self.stream = stream
        self.limit = limit
        self.count = 0

    def read(self, size=-1):
        data = self.stream.read(size if size and size > 0 else READ_CHUNK)
        self.count += len(data)
        if self.count > self.limit:
            raise MalformedCrashReport("too_large")
        return data


class GunzipReader:
    """Decompresses a gzip stream lazily, stopping at ``limit`` decompressed bytes."""

    def __init__(self, raw, limit):
        self.raw = raw
        self.limit = limit
        self.count = 0
        self.decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.eof = False

    def read(self, size=-1):
        size = size if size and size > 0 else READ_CHUNK
        while not self.eof:
            if self.decompressor.unconsumed_tail:
                chunk = self.decompressor.unconsumed_tail
            else:
                chunk = self.raw.read(READ_CHUNK)
                if not chunk:
                    if not self.decompressor.eof:
                        raise MalformedCrashReport("bad_gzip")
                    self.eof = True
                    break
            try:
                data = self.decompressor.decompress(chunk, size)
            except zlib.error as exc:
                raise MalformedCrashReport("bad_gzip") from exc
            if self.decompressor.eof:
                self.eof = True
            if data:
                self.count += len(data)
                if self.count > self.limit:
                    raise MalformedCrashReport("too_large")
                return data
        return b""


class PayloadLimits:
    """The caps a body must respect; values come from the resource's config."""

    def __init__(self, max_compressed, max_decompressed, max_parts, max_annotation):
        self.max_compressed = max_compressed
        self.max_decompressed = max_decompressed
        self.max_parts = max_parts
        self.max_annotation = max_annotation


def sanitize_dump_name(name, index):
    """Dump names are client input: restrict to ``[A-Za-z0-9_.-]``, no leading dot."""
    name = DUMP_NAME_UNSAFE_RE.sub("_", name or "").lstrip(".")[:MAX_DUMP_NAME_LENGTH]
    return name or f"dump_{index}"


def clean_text(raw):
    """Annotations are stored as JSON strings: valid UTF-8 without null bytes."""
    return raw.decode("utf-8", errors="replace").replace("\x00", "")


def parse_content_type(header):
    """Split a Content-Type header into (mimetype, params)."""
    if not header:
        raise MalformedCrashReport("no_content_type")
    mimetype, _, rest = header.partition(";")
    params = {}
    for item in rest.split(";"):
        key, sep, value = item.strip().partition("=")
        if sep:
            params[key.strip().lower()] = value.strip().strip('"')
    return mimetype.strip().lower(), params


def json_annotations(raw):
    """Newer Crashpad clients send annotations as one JSON object named ``extra``."""
    try:
        data = json.loads(clean_text(raw))
    except ValueError as exc:
        raise MalformedCrashReport("invalid_json") from exc
    if not isinstance(data, dict):
        raise MalformedCrashReport("invalid_json")
    result = {}
    for key, value in data.items():
        if not isinstance(value, str):
            value = json.dumps(value, sort_keys=True)
        result[key.replace("\x00", "")] = value.replace("\x00", "")
    return result


def is_dump_part(part):
    """Every file part is a dump, whatever its name."""
    return part.filename is not None or part.content_type.startswith("application/octet-stream")


def read_body(stream, content_type, content_encoding, content_length, limits):
    """Parse a crash report body into a ``CrashReport``; raise ``MalformedCrashReport``."""
    mimetype, params = parse_content_type(content_type)
    if mimetype not in SUPPORTED_CONTENT_TYPES:
        raise MalformedCrashReport("wrong_content_type")
    boundary = params.get("boundary")
    if not boundary:
        raise MalformedCrashReport("no_boundary")
    if content_length is not None and content_length > limits.max_compressed:
        raise MalformedCrashReport("too_large")

    reader = CappedReader(stream, limits.max_compressed)
    is_gzip = (content_encoding or "").strip().lower() == "gzip"
    if is_gzip:
        source = GunzipReader(reader, limits.max_decompressed)
        max_length = limits.max_decompressed
    else:
        source = reader
        max_length = content_length if content_length is not None else limits.max_compressed
    # One byte past the cap reaches our reader, which then refuses with too_large.
    max_length += 1

    options = MultipartParseOptions()
    options.max_body_part_count = limits.max_parts
    form = MultipartForm(
        BufferedReader(source.read, max_length), boundary.encode("latin-1"), None, options
    )
    report = CrashReport()
    report.metadata["payload_compressed"] = "1" if is_gzip else "0"
    try:
        for index, part in enumerate(form):
            add_part(report, part, index, limits)
    except MultipartParseError as exc:
        reason = "too_many_parts" if "maximum number" in (exc.description or "") else "bad_multipart"
        raise MalformedCrashReport(reason) from exc
    except UnicodeDecodeError as exc:
        raise MalformedCrashReport("bad_multipart") from exc

    if not report.annotations:
        raise MalformedCrashReport("no_annotations")
    return report


def add_part(report, part, index, limits):
    """Route one multipart part to the annotations or the dumps of ``report``."""
    name = (part.name or "").replace("\x00", "")
    if is_dump_part(part):
        dump_name = sanitize_dump_name(name or DEFAULT_DUMP_NAME, index)
        data = part.stream.read()
        if dump_name in report.dumps:
            report.note(f"duplicate dump {dump_name!r} ignored")
            return
        report.dumps[dump_name] = data
        report.checksums[dump_name] = hashlib.sha256(data).hexdigest()
        return

    raw = part.stream.read(limits.max_annotation + 1)
    if len(raw) > limits.max_annotation:
        raise MalformedCrashReport("annotation_too_large")
    if name == "extra" and raw.lstrip()[:1] == b"{":
        for key, value in json_annotations(raw).items():
            report.add_annotation(key, value)
        return
    if not name:
        report.note("annotation without a name ignored")
        return
    report.add_annotation(name, clean_text(raw))
