"""Waiting for the processor: poll filesystem storage for the processed crash."""

import json
import os
import time

from antenna.storage_keys import processed_crash_key


def wait_for_processed(crashes_root, crash_id, timeout=30):
    """The processed crash (saved once, after its Sentry attempt), or None after ``timeout``."""
    path = os.path.join(crashes_root, *processed_crash_key(crash_id).split("/"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as fp:
                return json.load(fp)
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.1)
    return None
