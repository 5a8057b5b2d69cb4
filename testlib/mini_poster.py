"""Send one crash report and print the response: ``python -m testlib.mini_poster``.

    python -m testlib.mini_poster --url http://127.0.0.1:8000/submit \\
        --dump tests/data/crash.dmp --annotation ProductName=MyApp --annotation Version=1.0 --gzip
"""

import argparse
import sys

import requests

from testlib.multipart import gzip_body, multipart_body

DEFAULT_ANNOTATIONS = {"ProductName": "Test", "Version": "1.0", "ReleaseChannel": "nightly"}


def post_crash(url, annotations, dumps, use_gzip=False, timeout=30):
    """POST a crash; return the ``requests.Response``."""
    body, headers = multipart_body(annotations, dumps)
    if use_gzip:
        body, headers = gzip_body(body, headers)
    return requests.post(url, data=body, headers=headers, timeout=timeout)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000/submit")
    parser.add_argument("--gzip", action="store_true", help="gzip the body")
    parser.add_argument("--dump", action="append", default=[], help="minidump file (repeatable)")
    parser.add_argument(
        "--annotation", action="append", default=[], metavar="K=V", help="repeatable"
    )
    args = parser.parse_args(argv)
    annotations = dict(DEFAULT_ANNOTATIONS)
    for item in args.annotation:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--annotation wants K=V, got {item!r}")
        annotations[key] = value
    dumps = {}
    for index, path in enumerate(args.dump):
        name = "upload_file_minidump" if index == 0 else f"upload_file_minidump_{index}"
        with open(path, "rb") as fp:
            dumps[name] = fp.read()
    resp = post_crash(args.url, annotations, dumps, use_gzip=args.gzip)
    print(f"{resp.status_code} {resp.text.strip()}")
    return 0 if resp.status_code == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
