"""The one storage key layout every backend uses (see DESIGN.md, "Storage layout")."""

from antenna.crashid import date_from_crash_id

MINIDUMP_FIELD = "upload_file_minidump"
MINIDUMP_STORED_NAME = "dump"


def raw_crash_key(crash_id):
    date = date_from_crash_id(crash_id).strftime("%Y%m%d")
    return f"v2/raw_crash/{crash_id[:3]}/{date}/{crash_id}"


def dump_names_key(crash_id):
    return f"v1/dump_names/{crash_id}"


def stored_dump_name(dump_name):
    """Socorro stores the main minidump as ``dump``."""
    return MINIDUMP_STORED_NAME if dump_name == MINIDUMP_FIELD else dump_name


def dump_key(crash_id, dump_name):
    return f"v1/{stored_dump_name(dump_name)}/{crash_id}"


def processed_crash_key(crash_id):
    return f"v1/processed_crash/{crash_id}"
