"""Processor command line: ``python -m processor {process-file,process,reprocess,worker}``.

    process-file DUMP [--annotations FILE.json] [--symbols DIR ...] [--event]
        print the processed crash (or with --event the Sentry event) of a local dump
    process CRASH_ID ...       process crashes from storage, send them, print results
    reprocess [CRASH_ID ...]   same, ids as arguments or one per line on stdin, with progress
    worker                     consume crash ids from the collector's SQS queue
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402

from antenna.crashid import create_crash_id, is_valid_crash_id  # noqa: E402
from antenna.ext.crashstorage_base import NoOpCrashStorage  # noqa: E402
from antenna.libconfig import build_config_manager  # noqa: E402
from antenna.metrics import LoggingMetrics  # noqa: E402
from antenna.service import exit_on_startup_error, setup_process  # noqa: E402
from processor.app import ProcessorApp, build_processor  # noqa: E402


def config_with(overrides):
    environ = dict(os.environ)
    environ.update(overrides)
    return build_config_manager(environ)


def start(config, factory):
    """Set up logging and build the app, or exit with a one-line reason."""
    try:
        setup_process(config, ProcessorApp)
        return factory()
    except Exception as exc:
        exit_on_startup_error(exc, "processor")


def cmd_process_file(args):
    overrides = {"LOGGING_LEVEL": os.environ.get("LOGGING_LEVEL", "WARNING")}
    if args.symbols:
        existing = os.environ.get("PROCESSOR_SYMBOLS_PATHS", "")
        overrides["PROCESSOR_SYMBOLS_PATHS"] = ",".join(filter(None, [existing, *args.symbols]))
    config = config_with(overrides)
    processor = start(
        config,
        lambda: build_processor(
            config, NoOpCrashStorage(config.with_namespace("crashstorage")), LoggingMetrics(config)
        ),
    )
    raw_crash = {}
    if args.annotations:
        with open(args.annotations) as fp:
            raw_crash = json.load(fp)
    crash_id = raw_crash.get("uuid") if is_valid_crash_id(raw_crash.get("uuid")) else create_crash_id()
    raw_crash.setdefault("uuid", crash_id)
    with open(args.dump, "rb") as fp:
        dumps = {"dump": fp.read()}
    processed = processor.process(crash_id, raw_crash, dumps)
    output = processor.event_builder.build(processed, raw_crash) if args.event else processed
    json.dump(output, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0 if processed["success"] else 1


def process_one(app, crash_id):
    """Process one stored crash; return (ok, the line to print)."""
    if not is_valid_crash_id(crash_id):
        return False, f"{crash_id}: not a crash id"
    processed = app.processor.process_crash(crash_id)
    if processed is None:
        return False, f"{crash_id}: not found in storage"
    line = f"{crash_id}: {processed['signature']} (sentry: {processed['sentry']['status']})"
    return processed["success"], line


def process_ids(crash_ids, progress=False):
    """Process crashes one by one; results on stdout, a progress bar on stderr."""
    config = build_config_manager()
    app = start(config, lambda: ProcessorApp(config))
    failures = 0
    total = len(crash_ids)
    for number, crash_id in enumerate(crash_ids, 1):
        ok, line = process_one(app, crash_id)
        failures += 0 if ok else 1
        print(line, flush=True)
        if progress:
            bar = "#" * (30 * number // total)
            print(f"\r[{bar:<30}] {number}/{total}", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    return 1 if failures else 0


def cmd_process(args):
    return process_ids(args.crash_ids)


def cmd_reprocess(args):
    crash_ids = args.crash_ids or [line.strip() for line in sys.stdin if line.strip()]
    return process_ids(crash_ids, progress=True)


def cmd_worker(args):
    from processor.worker import SQSWorker

    config = build_config_manager()
    app = start(config, lambda: ProcessorApp(config))
    worker = start(config, lambda: SQSWorker.from_config(config, app.processor))
    # SIGTERM/SIGINT: stop polling, finish the crashes in hand, then exit.
    gevent.signal_handler(signal.SIGTERM, worker.stop)
    gevent.signal_handler(signal.SIGINT, worker.stop)
    worker.run(max_idle_polls=args.max_idle_polls)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m processor", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("process-file", help="process a local minidump and print JSON")
    p.add_argument("dump")
    p.add_argument("--annotations", help="JSON file with the crash annotations")
    p.add_argument("--symbols", action="append", default=[], help="Breakpad symbols folder")
    p.add_argument("--event", action="store_true", help="print the Sentry event instead")
    p.set_defaults(func=cmd_process_file)
    p = sub.add_parser("process", help="process crashes from storage")
    p.add_argument("crash_ids", nargs="+")
    p.set_defaults(func=cmd_process)
    p = sub.add_parser("reprocess", help="reprocess crashes (ids as arguments or on stdin)")
    p.add_argument("crash_ids", nargs="*")
    p.set_defaults(func=cmd_reprocess)
    p = sub.add_parser("worker", help="consume crash ids from the SQS queue")
    p.add_argument("--max-idle-polls", type=int, default=None, help="exit after N empty polls")
    p.set_defaults(func=cmd_worker)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
