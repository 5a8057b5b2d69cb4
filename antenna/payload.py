"""Turns a ``POST /submit`` body into annotations and dumps, or a precise rejection.

Breakpad, Crashpad and Electron send ``multipart/form-data`` (some ``multipart/mixed``),
maybe gzip'd.  The body is read once (capped), decompressed in one call (capped, so a
gzip bomb stops at the limit) and split on the boundary with ``bytes.find``.  Falcon's
streaming multipart reader did the same job at twice the CPU per crash (bench/README.md),
and the collector's throughput is bound by exactly this step; zlib-ng inflates the same
gzip stream in about half of zlib's time.
"""

import dataclasses
import hashlib
import json
import re

from zlib_ng import zlib_ng as zlib

from antenna.rawcrash import CrashReport

SUPPORTED_CONTENT_TYPES = ("multipart/form-data", "multipart/mixed")
# RFC 9110: "x-gzip" is to be read as "gzip".  Breakpad and Crashpad send nothing else.
GZIP_ENCODINGS = ("gzip", "x-gzip")
CONTENT_ENCODINGS = ("", "identity", *GZIP_ENCODINGS)

# Dump names end up in storage keys and file paths: keep them boring.
DUMP_NAME_UNSAFE_RE = re.compile(r"[^A-Za-z0-9_.-]")
MAX_DUMP_NAME_LENGTH = 64
DEFAULT_DUMP_NAME = "upload_file_minidump"
MAX_HEADERS_SIZE = 8192
CRLF = b"\r\n"
SIMPLE_TEXT_PART = b'content-disposition: form-data; name="'
# name="value" or name=value pairs of a Content-Disposition header
DISPOSITION_PARAM_RE = re.compile(r';\s*([\w*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))')


class MalformedCrashReport(Exception):
    """The client sent something we can't accept; ``reason`` goes into the response."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class PayloadLimits:
    """The caps a body must respect; values come from the resource's config."""

    max_compressed: int
    max_decompressed: int
    max_parts: int
    max_annotation: int


def sanitize_dump_name(name, index):
    """Dump names are client input: restrict to ``[A-Za-z0-9_.-]``, no leading dot."""
    name = DUMP_NAME_UNSAFE_RE.sub("_", name or "").lstrip(".")[:MAX_DUMP_NAME_LENGTH]
    return name or f"dump_{index}"


def clean_text(raw):
    """Annotations are stored as JSON strings: valid UTF-8 without null bytes."""
    return bytes(raw).decode("utf-8", errors="replace").replace("\x00", "")


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


def read_raw_body(stream, content_length, limit):
    """Read the request body, refusing more than ``limit`` bytes."""
    if content_length is not None and content_length > limit:
        raise MalformedCrashReport("too_large")
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise MalformedCrashReport("too_large")
    return body


def gunzip(body, limit):
    """Decompress a gzip body in one call, stopping one byte past ``limit``."""
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = decompressor.decompress(body, limit + 1)
    except zlib.error as exc:
        raise MalformedCrashReport("bad_gzip") from exc
    if len(data) > limit:
        raise MalformedCrashReport("too_large")
    if not decompressor.eof:
        raise MalformedCrashReport("bad_gzip")
    return data


class Part:
    """One multipart part: its headers and a view of its content in the body."""

    __slots__ = ("name", "filename", "content_type", "content")

    def __init__(self, name, filename, content_type, content):
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.content = content

    @classmethod
    def from_headers(cls, block, content):
        """Parse the part's header block (bytes) into name, filename and content type."""
        if (
            block[: len(SIMPLE_TEXT_PART)].lower() == SIMPLE_TEXT_PART
            and block.count(b'"') == 2
            and block.endswith(b'"')
            and CRLF not in block
        ):
            # Breakpad sends ~40 of these per crash: skip the general parser.
            name = block[len(SIMPLE_TEXT_PART) : -1].decode("utf-8", errors="replace")
            return cls(name.replace("\x00", ""), None, "", content)
        disposition = content_type = ""
        for line in block.split(CRLF):
            key, sep, value = line.partition(b":")
            if not sep:
                continue
            key = key.strip().lower()
            if key == b"content-disposition":
                disposition = value.decode("utf-8", errors="replace")
            elif key == b"content-type":
                content_type = value.strip().decode("latin-1").lower()
        params = {}
        for key, quoted, bare in DISPOSITION_PARAM_RE.findall(disposition):
            params.setdefault(key.lower(), quoted.replace('\\"', '"') if quoted else bare)
        name = params.get("name", "").replace("\x00", "")
        return cls(name, params.get("filename"), content_type, content)

    @property
    def is_dump(self):
        """Every file part is a dump, whatever its name."""
        return self.filename is not None or self.content_type.startswith(
            "application/octet-stream"
        )


def split_parts(body, boundary, max_parts):
    """Yield the parts of a multipart body; raise ``MalformedCrashReport`` on bad structure."""
    delimiter = b"--" + boundary
    view = memoryview(body)
    start = body.find(delimiter)
    if start < 0:
        raise MalformedCrashReport("bad_multipart")
    position = start + len(delimiter)
    count = 0
    while True:
        if body[position : position + 2] == b"--":
            return  # closing delimiter
        line_end = body.find(CRLF, position)
        if line_end < 0:
            raise MalformedCrashReport("bad_multipart")
        headers_end = body.find(b"\r\n\r\n", line_end, line_end + MAX_HEADERS_SIZE)
        if headers_end < 0:
            raise MalformedCrashReport("bad_multipart")
        block = body[line_end + 2 : headers_end]
        content_start = headers_end + 4
        content_end = body.find(CRLF + delimiter, content_start)
        if content_end < 0:
            raise MalformedCrashReport("bad_multipart")  # truncated: no closing delimiter
        count += 1
        if count > max_parts:
            raise MalformedCrashReport("too_many_parts")
        yield Part.from_headers(block, view[content_start:content_end])
        position = content_end + 2 + len(delimiter)


def boundary_of(content_type):
    """The multipart boundary of a supported Content-Type, or ``MalformedCrashReport``."""
    mimetype, params = parse_content_type(content_type)
    if mimetype not in SUPPORTED_CONTENT_TYPES:
        raise MalformedCrashReport("wrong_content_type")
    boundary = params.get("boundary")
    if not boundary:
        raise MalformedCrashReport("no_boundary")
    return boundary.encode("latin-1")


def parse_body(body, boundary, content_encoding, limits):
    """Decompress and split a body into a ``CrashReport``; raise ``MalformedCrashReport``.

    Pure CPU with no I/O: inflating and hashing release the GIL, so callers may run
    this in a thread while the gevent hub serves other requests.
    """
    encoding = (content_encoding or "").strip().lower()
    if encoding not in CONTENT_ENCODINGS:
        raise MalformedCrashReport("unsupported_content_encoding")
    is_gzip = encoding in GZIP_ENCODINGS
    if is_gzip:
        body = gunzip(body, limits.max_decompressed)
    report = CrashReport()
    report.metadata["payload_compressed"] = "1" if is_gzip else "0"
    for index, part in enumerate(split_parts(body, boundary, limits.max_parts)):
        add_part(report, part, index, limits)
    if not report.annotations:
        raise MalformedCrashReport("no_annotations")
    return report


def add_part(report, part, index, limits):
    """Route one multipart part to the annotations or the dumps of ``report``."""
    if part.is_dump:
        dump_name = sanitize_dump_name(part.name or DEFAULT_DUMP_NAME, index)
        if dump_name in report.dumps:
            report.note(f"duplicate dump {dump_name!r} ignored")
            return
        data = bytes(part.content)
        report.dumps[dump_name] = data
        report.checksums[dump_name] = hashlib.sha256(data).hexdigest()
        return
    if len(part.content) > limits.max_annotation:
        raise MalformedCrashReport("annotation_too_large")
    if part.name == "extra" and bytes(part.content[:64]).lstrip()[:1] == b"{":
        for key, value in json_annotations(part.content).items():
            report.add_annotation(key, value)
        return
    if not part.name:
        report.note("annotation without a name ignored")
        return
    report.add_annotation(part.name, clean_text(part.content))
