"""Bounded concurrent crash submission for system tests and benchmarks."""

import concurrent.futures
import hashlib
import time

import requests

from testlib.multipart import multipart_body


class Submission:
    """What the client saw for one crash."""

    __slots__ = ("index", "status", "text", "crash_id", "sha256", "seconds")

    def __init__(self, index, status, text, sha256, seconds):
        self.index = index
        self.status = status
        self.text = text
        self.sha256 = sha256
        self.seconds = seconds
        self.crash_id = text[len("CrashID=bp-") :] if text.startswith("CrashID=bp-") else None


def make_dump(index, size=4096):
    """A unique pseudo-dump per crash so checksums identify crashes."""
    seed = hashlib.sha256(str(index).encode()).digest()
    return b"MDMP" + (seed * (size // len(seed) + 1))[: size - 4]


def submit_one(url, index, dump_size=4096, annotations=None, timeout=30):
    dump = make_dump(index, dump_size)
    body, headers = multipart_body(
        annotations or {"ProductName": "LoadTest", "Version": "1.0", "Index": str(index)},
        {"upload_file_minidump": dump},
    )
    start = time.monotonic()
    try:
        resp = requests.post(url, data=body, headers=headers, timeout=timeout)
        status, text = resp.status_code, resp.text.strip()
    except requests.RequestException as exc:
        status, text = None, repr(exc)
    return Submission(index, status, text, hashlib.sha256(dump).hexdigest(), time.monotonic() - start)


def submit_many(url, count, concurrency, max_seconds, dump_size=4096, start_index=0):
    """Submit up to ``count`` crashes with ``concurrency`` threads, for at most ``max_seconds``."""
    deadline = time.monotonic() + max_seconds
    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = []
        for index in range(start_index, start_index + count):
            futures.append(
                pool.submit(
                    lambda i: submit_one(url, i, dump_size)
                    if time.monotonic() < deadline
                    else None,
                    index,
                )
            )
        for future in futures:
            result = future.result()
            if result is not None:
                results.append(result)
    return results
