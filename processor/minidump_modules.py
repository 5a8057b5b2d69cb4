"""Read a minidump's module list without running the stackwalker.

The symbols provider must know which ``<debug_file>/<debug_id>`` pairs a dump
needs *before* ``minidump_stackwalk`` runs, so that remote symbols can be
fetched in parallel into the cache the stackwalker reads. Only the header, the
stream directory, the module list stream (type 4) and each module's name and
CodeView record are read, from the dump's bytes the processor holds anyway.

Identifiers are formatted exactly as Breakpad's ``MinidumpModule`` does
(``debug_file()``, ``debug_identifier()``, ``code_identifier()``), because the
stackwalker looks symbols up under those exact names.

Dumps come from the internet: every offset is bounds-checked and any parsing
problem yields ``[]`` (or skips the one bad module), never an exception.
"""

import codecs
import struct

MINIDUMP_SIGNATURE = b"MDMP"
MODULE_LIST_STREAM = 4
MODULE_SIZE = 108
# MINIDUMP_MODULE: base, size, (checksum), timestamp, name rva, (version info),
# CodeView record size and rva, (misc record, reserved).
_MODULE = struct.Struct("<QI4xII52xII24x")
_U32 = struct.Struct("<I")
# What bytes.decode("utf-16-le", "replace") calls, minus a codec registry lookup
# and a Python wrapper that cost four times the decoding of a module name.
_decode_utf16 = codecs.utf_16_le_decode
# A hostile dump could claim millions of modules; real processes have hundreds.
MAX_MODULES = 4096
MAX_STREAMS = 4096
MAX_NAME_BYTES = 8192
MAX_CV_BYTES = 8192

CV_PDB70 = b"RSDS"
CV_PDB20 = b"NB10"
# Breakpad writes the u32 0x4270454C ("BpEL"), i.e. these bytes on disk.
CV_ELF = b"LEpB"


def _basename(path):
    """Last component of a Windows or POSIX path (Breakpad's PathnameStripper)."""
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _minidump_string(buf, rva):
    """Decode a MINIDUMP_STRING (u32 byte length + UTF-16LE) or return ""."""
    if rva + 4 > len(buf):
        return ""
    (length,) = _U32.unpack_from(buf, rva)
    if length > MAX_NAME_BYTES or rva + 4 + length > len(buf):
        return ""
    return _decode_utf16(buf[rva + 4 : rva + 4 + length], "replace", True)[0]


def _c_string(raw):
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _guid_id(guid, age):
    """Breakpad's ``%08X%04X%04X%02X..%02X%x`` form of a GUID and age.

    The GUID's first three fields are little-endian integers printed in hex,
    i.e. their bytes reversed.
    """
    swapped = guid[3::-1] + guid[5:3:-1] + guid[7:5:-1] + guid[8:16]
    return f"{swapped.hex().upper()}{age:x}"


def _codeview(buf, rva, size, code_file):
    """Return (debug_file, debug_id, build_id hex or "") from a CodeView record."""
    if size < 4 or size > MAX_CV_BYTES or rva + size > len(buf):
        return "", "", ""
    cv = buf[rva : rva + size]
    signature = cv[:4]
    if signature == CV_PDB70 and size >= 24:
        (age,) = _U32.unpack_from(cv, 20)
        return _basename(_c_string(cv[24:])), _guid_id(cv[4:20], age), ""
    if signature == CV_PDB20 and size >= 16:
        timestamp, age = struct.unpack_from("<II", cv, 8)
        return _basename(_c_string(cv[16:])), f"{timestamp:08X}{age:x}", ""
    if signature == CV_ELF:
        build_id = cv[4:]
        # Breakpad stuffs the first 16 bytes of the build id into a GUID,
        # which byte-swaps its first three fields, and appends age 0.
        guid = build_id[:16].ljust(16, b"\0")
        return _basename(code_file), _guid_id(guid, 0), build_id.hex()
    return "", "", ""


def _parse(buf):
    if len(buf) < 32 or bytes(buf[:4]) != MINIDUMP_SIGNATURE:
        return []
    stream_count, directory_rva = struct.unpack_from("<II", buf, 8)
    if stream_count > MAX_STREAMS or directory_rva + 12 * stream_count > len(buf):
        return []
    for index in range(stream_count):
        stream_type, size, rva = struct.unpack_from(
            "<III", buf, directory_rva + 12 * index
        )
        if stream_type == MODULE_LIST_STREAM:
            return _modules(buf, rva, size)
    return []


def _modules(buf, rva, size):
    if size < 4 or rva + size > len(buf):
        return []
    (count,) = struct.unpack_from("<I", buf, rva)
    # Some writers pad the count to 8 bytes; Breakpad accepts both layouts.
    if size == 4 + count * MODULE_SIZE:
        first = rva + 4
    elif size == 8 + count * MODULE_SIZE:
        first = rva + 8
    else:
        return []
    if count > MAX_MODULES:
        return []
    modules = []
    records = buf[first : first + count * MODULE_SIZE]
    for base, image_size, timestamp, name_rva, cv_size, cv_rva in _MODULE.iter_unpack(records):
        code_file = _minidump_string(buf, name_rva)
        debug_file, debug_id, build_id = _codeview(buf, cv_rva, cv_size, code_file)
        modules.append(
            {
                "filename": _basename(code_file),
                "code_file": code_file,
                "code_id": build_id or f"{timestamp:08X}{image_size:x}",
                "debug_file": debug_file,
                "debug_id": debug_id,
                "base_addr": f"0x{base:08x}",
                "end_addr": f"0x{base + max(image_size, 1) - 1:08x}",
            }
        )
    return modules


def parse_modules(dump):
    """Return the modules of a dump given as bytes, in stream order, or [] if it is not one.

    Each module is a dict: ``filename`` (code file basename), ``code_file``,
    ``code_id``, ``debug_file`` (basename, as the stackwalker prints it),
    ``debug_id`` (Breakpad form, e.g. ``5A9832E5287241C1838ED98914E9B7FF1``),
    ``base_addr`` and ``end_addr`` (inclusive; hex strings).
    """
    try:
        return _parse(dump)
    except (ValueError, struct.error, OverflowError):
        return []

