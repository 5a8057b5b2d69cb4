"""``bin/send_crash_report.sh``: send a crash to the local pipeline and show where it landed.

Posts a minidump with realistic annotations, prints the CrashID, waits for the processor
to save the processed crash, and prints its signature and the Bugsink issue URL (or the
Sentry event id when ``make run`` sends to another Sentry).
"""

import argparse
import os
import shutil
import sys

from testlib import onebox
from testlib.bugsink import Bugsink
from testlib.mini_poster import post_crash
from testlib.processed import wait_for_processed

SAMPLE_DUMP = os.path.join(onebox.REPO_ROOT, "tests", "data", "sample-crash", "crash.dmp")
CRASHES_DIR = os.path.join(onebox.DATA_DIR, "crashes")
ANNOTATIONS = {
    "ProductName": "ExampleApp",
    "Version": "1.0.0",
    "ReleaseChannel": "nightly",
    "BuildID": "20261129000000",
    "Vendor": "Example Corp",
    "ProcessType": "main",
}


def install_symbols(source):
    """Copy a Breakpad symbol folder into the store the local processor reads."""
    shutil.copytree(source, onebox.LOCAL_SYMBOLS, dirs_exist_ok=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dump", nargs="?", default=SAMPLE_DUMP)
    parser.add_argument("--symbols", help="Breakpad symbol folder to install first")
    parser.add_argument("--url", default=f"http://{onebox.COLLECTOR_BIND}/submit")
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--annotation", action="append", default=[], metavar="K=V")
    parser.add_argument("--timeout", type=float, default=30, help="seconds to wait for processing")
    args = parser.parse_args(argv)

    if args.symbols:
        install_symbols(args.symbols)
    annotations = dict(ANNOTATIONS)
    for item in args.annotation:
        key, _, value = item.partition("=")
        annotations[key] = value
    with open(args.dump, "rb") as fp:
        dump = fp.read()
    resp = post_crash(args.url, annotations, {"upload_file_minidump": dump}, use_gzip=args.gzip)
    print(f"{resp.status_code} {resp.text.strip()}", flush=True)
    if not resp.text.startswith("CrashID=bp-"):
        return 1
    crash_id = resp.text.strip().removeprefix("CrashID=bp-")
    processed = wait_for_processed(CRASHES_DIR, crash_id, args.timeout)
    if processed is None:
        print(f"not processed within {args.timeout:g}s (is `make run` running with local storage?)")
        return 1
    print(f"signature: {processed['signature']}")
    sentry = processed["sentry"]
    bugsink = Bugsink.attach(onebox.BUGSINK_DIR, onebox.BUGSINK_PORT)
    if sentry["status"] == "sent" and bugsink:
        print(f"issue: {bugsink.issue_url(sentry['event_id'])}")
    else:
        print(f"sentry: {sentry['status']} (event id {sentry['event_id']})")
    return 0 if sentry["status"] == "sent" else 1


if __name__ == "__main__":
    sys.exit(main())
