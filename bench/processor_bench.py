"""Processor benchmark: stackwalk time against everything else the processor does, per crash.

``make bench`` runs ``python -m bench.processor_bench`` after the collector bench. It
prints figures and asserts nothing. See bench/README.md for what is measured.

Every good dump of ``../shared/corpus`` (with its ``symbols/`` folder) is saved into a
filesystem crash storage in a temp dir and processed with ``Processor.process_crash``
(the real path: load, rules, Sentry routing, save once). No Sentry DSN is set, so
nothing is sent; the Sentry event and its JSON (``event_builder.build_with_payload``) and
its envelope (``delivery.envelope``, what ``SentryDelivery.send`` would POST) are built
right after, as ``Processor.send_to_sentry`` does, timed, and counted in the non-stackwalk
time.

Crashes run on gevent worker greenlets pulling from a queue, as
``processor.inprocess.InProcessCrashPublish`` does with ``PROCESSOR_CONCURRENCY``
coroutines (the stackwalker is a gevent subprocess, so two walks overlap while the
hub runs the Python part of the other crash). The process is monkey-patched like the
processor's and the collector's.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import cProfile  # noqa: E402
import functools  # noqa: E402
import gc  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import pstats  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import gevent.queue  # noqa: E402

import processor.rules as rules_module  # noqa: E402
from antenna.crashid import create_crash_id  # noqa: E402
from antenna.ext.fs.crashstorage import FSCrashStorage  # noqa: E402
from antenna.libconfig import build_config_manager  # noqa: E402
from antenna.metrics import LoggingMetrics  # noqa: E402
from processor.app import build_processor  # noqa: E402
from tests.corpus import BAD_INPUT, CORPUS_DIR, cases  # noqa: E402

ISSUE = (
    "Measured here: stackwalk 4-30 ms on small dumps, 0.1-0.5 s on real Firefox dumps. "
    "Target: everything but the stackwalk costs at most 10 % of stackwalk time; memory bounded."
)
TARGET_RATIO = 0.10
PGO = "mozilla-pgo"
GROUPS = ("small", "pgo")
GROUP_LABEL = {"small": "small dumps (all sources but mozilla-pgo)", "pgo": "mozilla-pgo (Firefox)"}
RAW_CRASH = {
    "ProductName": "CorpusApp",
    "Version": "2.1.0",
    "ReleaseChannel": "beta",
    "BuildID": "20261129100000",
    "submitted_timestamp": "2026-11-29T10:00:00+00:00",
    "Comment": "crashed while saving /home/alice/report.txt, mail bob@example.com",
}
# Steps timed inside process_crash (by wrapping the real callables), then the two
# Sentry steps timed after it. "other" is process_crash's wall time minus its steps:
# annotations, history, metrics, logging (FS storage: the stackwalker reads the stored
# dump, and the collector's checksum is reused).
STEPS = (
    "stackwalk",
    "load",
    "modules",
    "symbols",
    "parse",
    "signature",
    "json",
    "fs_write",
    "other",
    "event_build",
    "envelope",
)
NON_STACKWALK = STEPS[1:]
MB = 1024 * 1024


# --- timing hooks ------------------------------------------------------------------

# greenlet -> dict step -> seconds, for the crash that greenlet is processing
CURRENT = {}


def add(step, seconds):
    record = CURRENT.get(gevent.getcurrent())
    if record is not None:
        record[step] = record.get(step, 0.0) + seconds


def timed(step, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            add(step, time.perf_counter() - start)

    return wrapper


def instrument_modules():
    """The rules module's module-level helpers (parse_modules, parse_stackwalk)."""
    rules_module.parse_modules = timed("modules", rules_module.parse_modules)
    rules_module.parse_stackwalk = timed("parse", rules_module.parse_stackwalk)


def instrument(processor):
    storage = processor.crashstorage
    processor.stackwalker.walk = timed("stackwalk", processor.stackwalker.walk)
    processor.symbols.prepare = timed("symbols", processor.symbols.prepare)
    processor.signature_maker.generate = timed("signature", processor.signature_maker.generate)
    for name in ("load_raw_crash", "load_dumps", "load_processed_crash"):
        setattr(storage, name, timed("load", getattr(storage, name)))
    # save_processed_crash = JSON serialization + put; "json" is the save minus the put.
    storage.put = timed("fs_write", storage.put)
    storage.save_processed_crash = timed("save", storage.save_processed_crash)


# --- setup -------------------------------------------------------------------------


class Job:
    """One corpus dump, stored once per pass under a fresh crash id."""

    def __init__(self, case, processor):
        self.case = case
        self.processor = processor
        self.group = "pgo" if case.source == PGO else "small"
        self.dump = case.dump.read_bytes()
        self.size = len(self.dump)
        # What the collector records for every crash it stores.
        self.checksums = {"upload_file_minidump": hashlib.sha256(self.dump).hexdigest()}


def build_jobs(tmp):
    """One processor per corpus source (its symbols folder), sharing one FS storage."""
    good = [case for case in cases() if case.source != BAD_INPUT]
    processors = {}
    jobs = []
    for case in good:
        if case.source not in processors:
            config = build_config_manager(
                {
                    "CRASHSTORAGE_FS_ROOT": os.path.join(tmp, "crashes"),
                    "PROCESSOR_SYMBOLS_PATHS": str(case.symbols) if case.symbols else "",
                    "PROCESSOR_SYMBOLS_CACHE": os.path.join(tmp, "symcache"),
                }
            )
            storage = FSCrashStorage(config.with_namespace("crashstorage"))
            processor = build_processor(config, storage, LoggingMetrics(config))
            instrument(processor)
            processors[case.source] = processor
        jobs.append(Job(case, processors[case.source]))
    return jobs


def store(jobs):
    """Save every job's crash under a new id (the collector's part, not timed)."""
    batch = []
    for job in jobs:
        crash_id = create_crash_id()
        raw_crash = dict(RAW_CRASH, uuid=crash_id, dump_checksums=job.checksums)
        job.processor.crashstorage.save_crash(crash_id, raw_crash, {"upload_file_minidump": job.dump})
        batch.append((job, crash_id))
    return batch


# --- running -----------------------------------------------------------------------


def process_one(job, crash_id):
    """process_crash + Sentry event + envelope; return the per-step seconds."""
    record = {}
    CURRENT[gevent.getcurrent()] = record
    processor = job.processor
    start = time.perf_counter()
    try:
        processed = processor.process_crash(crash_id)
        process_seconds = time.perf_counter() - start
        raw_crash = dict(RAW_CRASH, uuid=crash_id, dump_checksums=job.checksums)
        t0 = time.perf_counter()
        event, payload = processor.event_builder.build_with_payload(processed, raw_crash)
        t1 = time.perf_counter()
        processor.delivery.envelope(event, minidump=job.dump, payload=payload)
        t2 = time.perf_counter()
    finally:
        del CURRENT[gevent.getcurrent()]
    record["event_build"] = t1 - t0
    record["envelope"] = t2 - t1
    record["json"] = record.pop("save", 0.0) - record.get("fs_write", 0.0)
    inside = sum(record.get(s, 0.0) for s in STEPS if s not in ("other", "event_build", "envelope"))
    record["other"] = process_seconds - inside
    record["total"] = t2 - start
    record["ok"] = processed["stackwalker"]["status"] == "ok"
    record["walk_seconds"] = processed["stackwalker"]["seconds"]
    return record


def run_pass(jobs, concurrency):
    """Process ``jobs`` with ``concurrency`` worker greenlets; (wall seconds, records)."""
    batch = store(jobs)
    queue = gevent.queue.Queue()
    for item in batch:
        queue.put(item)
    results = []

    def worker():
        while True:
            try:
                job, crash_id = queue.get_nowait()
            except gevent.queue.Empty:
                return
            results.append((job, process_one(job, crash_id)))

    start = time.perf_counter()
    gevent.joinall([gevent.spawn(worker) for _ in range(concurrency)], raise_error=True)
    return time.perf_counter() - start, results


# --- memory ------------------------------------------------------------------------


def proc_status_kb(field):
    with open("/proc/self/status") as fp:
        for line in fp:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def memory():
    gc.collect()
    return {
        "rss_mb": proc_status_kb("VmRSS") / 1024,
        "hwm_mb": proc_status_kb("VmHWM") / 1024,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "children_maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


# --- report ------------------------------------------------------------------------


def ms(seconds):
    return seconds * 1000.0


def summarize(records):
    """Per-step mean ms, totals and ratios for a list of per-crash records."""
    n = len(records)
    sums = {s: sum(r.get(s, 0.0) for r in records) for s in STEPS}
    stackwalk = sums["stackwalk"]
    non = sum(sums[s] for s in NON_STACKWALK)
    per_crash_ratios = [
        sum(r.get(s, 0.0) for s in NON_STACKWALK) / r["stackwalk"] for r in records if r["stackwalk"]
    ]
    return {
        "crashes": n,
        "mean_ms": {s: ms(sums[s]) / n for s in STEPS},
        "stackwalk_min_ms": ms(min(r["stackwalk"] for r in records)),
        "stackwalk_max_ms": ms(max(r["stackwalk"] for r in records)),
        "non_stackwalk_mean_ms": ms(non) / n,
        "total_mean_ms": ms(sum(r["total"] for r in records)) / n,
        "ratio": non / stackwalk if stackwalk else None,
        "ratio_median_per_crash": statistics.median(per_crash_ratios) if per_crash_ratios else None,
        "ratio_max_per_crash": max(per_crash_ratios) if per_crash_ratios else None,
        "not_ok": sum(1 for r in records if not r["ok"]),
    }


def print_breakdown(title, summary):
    print(f"\n{title}: {summary['crashes']} crash runs, mean ms per crash")
    print("  " + "  ".join(f"{s:>12}" for s in STEPS))
    print("  " + "  ".join(f"{summary['mean_ms'][s]:12.2f}" for s in STEPS))
    print(
        f"  stackwalk {summary['stackwalk_min_ms']:.1f}-{summary['stackwalk_max_ms']:.1f} ms "
        f"(mean {summary['mean_ms']['stackwalk']:.1f}); non-stackwalk mean "
        f"{summary['non_stackwalk_mean_ms']:.2f} ms; total mean {summary['total_mean_ms']:.1f} ms"
    )
    verdict = "meets" if summary["ratio"] <= TARGET_RATIO else "MISSES"
    print(
        f"  ratio non-stackwalk/stackwalk: {summary['ratio']:.3f} (sum over crashes; "
        f"median per crash {summary['ratio_median_per_crash']:.3f}, worst "
        f"{summary['ratio_max_per_crash']:.3f}) -> {verdict} the 10 % target"
    )


def print_per_case(records_by_case):
    print("\nper dump (mean over rounds, concurrency 1), ms:")
    print(f"  {'dump':48} {'KB':>6} {'stackwalk':>9} {'non-sw':>8} {'ratio':>6}  top non-stackwalk steps")
    for case_id, (size, records) in sorted(records_by_case.items()):
        n = len(records)
        sw = sum(r["stackwalk"] for r in records) / n
        steps = {s: sum(r.get(s, 0.0) for r in records) / n for s in NON_STACKWALK}
        non = sum(steps.values())
        top = sorted(steps.items(), key=lambda kv: -kv[1])[:3]
        tops = ", ".join(f"{s} {ms(v):.1f}" for s, v in top)
        print(f"  {case_id:48} {size // 1024:6d} {ms(sw):9.1f} {ms(non):8.2f} {non / sw:6.3f}  {tops}")


def profile_non_stackwalk(jobs, rounds, limit):
    """cProfile the whole per-crash path with the stackwalker replaced by its recorded output."""
    recorded = {}
    originals = {}
    for job in jobs:
        walk = job.processor.stackwalker.walk
        originals[id(job.processor)] = (job.processor, walk)
    # Record one real result per dump, then replay it (the stackwalker is excluded).
    current = {}

    def replay_factory(real_walk):
        def replay(dump_path, symbol_dirs=()):
            key = current["case"]
            if key not in recorded:
                recorded[key] = real_walk(dump_path, symbol_dirs)
            return recorded[key]

        return replay

    for proc, walk in originals.values():
        proc.stackwalker.walk = replay_factory(walk)
    try:
        for job, crash_id in store(jobs):
            current["case"] = job.case.id
            process_one(job, crash_id)
        profiler = cProfile.Profile()
        for _ in range(rounds):
            for job, crash_id in store(jobs):
                current["case"] = job.case.id
                profiler.enable()
                process_one(job, crash_id)
                profiler.disable()
    finally:
        for proc, walk in originals.values():
            proc.stackwalker.walk = walk
    for sort in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats(sort).print_stats(limit)
        text = out.getvalue()
        print(f"\ncProfile of the non-stackwalk path ({rounds} passes, sorted by {sort}):")
        print(text[text.find("   ncalls"):] if "   ncalls" in text else text)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Processor benchmark: stackwalk vs the rest")
    parser.add_argument("--rounds", type=int, default=3, help="measured passes per concurrency")
    parser.add_argument("--json", help="write every figure to this file")
    parser.add_argument("--per-case", action="store_true", help="print the per-dump table")
    parser.add_argument(
        "--profile", action="store_true",
        help="also cProfile the non-stackwalk path (stackwalker output replayed)",
    )
    parser.add_argument("--profile-limit", type=int, default=30)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    print("Processor benchmark")
    print(ISSUE)
    if not CORPUS_DIR.is_dir():
        print(f"SKIPPED: minidump corpus not found at {CORPUS_DIR}")
        return 0
    tmp = tempfile.mkdtemp(prefix="processor-bench-")
    try:
        instrument_modules()
        jobs = build_jobs(tmp)
        if not jobs:
            print(f"SKIPPED: no good dumps in {CORPUS_DIR}")
            return 0
        binary = jobs[0].processor.stackwalker.config("stackwalker")
        if not os.path.exists(binary):
            print(f"SKIPPED: stackwalker not installed at {binary}; run make setup")
            return 0
        return run(args, jobs, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args, jobs, tmp):
    by_group = {g: [j for j in jobs if j.group == g] for g in GROUPS}
    print(
        f"corpus {CORPUS_DIR}: {len(jobs)} good dumps; "
        + "; ".join(
            f"{GROUP_LABEL[g]}: {len(js)} dumps, "
            f"{min(j.size for j in js) / 1024:.0f} KB-{max(j.size for j in js) / 1024:.0f} KB"
            for g, js in by_group.items() if js
        )
    )
    print(
        f"processor: Processor.process_crash, FSCrashStorage in {tmp} (processed crashes are written "
        "without sync), no "
        "Sentry DSN (event + envelope built and timed separately), gevent worker greenlets "
        f"like InProcessCrashPublish; {os.cpu_count()} CPUs; python {sys.version.split()[0]}"
    )

    mem_start = memory()
    # Warm-up pass: imports, regex compiles, page cache for dumps and symbols.
    run_pass(jobs, 1)
    mem_after_warmup = memory()

    throughput = {c: {g: [] for g in GROUPS} for c in (1, 2)}
    latency = {c: {g: [] for g in GROUPS} for c in (1, 2)}
    records = {g: [] for g in GROUPS}
    records_by_case = {}
    rss_rounds = []
    for round_index in range(args.rounds):
        for concurrency in (1, 2):
            for group in GROUPS:
                if not by_group[group]:
                    continue
                wall, results = run_pass(by_group[group], concurrency)
                throughput[concurrency][group].append(len(results) / wall)
                latency[concurrency][group].extend(r["total"] for _, r in results)
                if concurrency == 1:
                    for job, record in results:
                        records[group].append(record)
                        records_by_case.setdefault(job.case.id, (job.size, []))[1].append(record)
        mem = memory()
        rss_rounds.append(mem["rss_mb"])
        print(f"round {round_index + 1}/{args.rounds}: VmRSS {mem['rss_mb']:.1f} MB, VmHWM {mem['hwm_mb']:.1f} MB")

    summaries = {g: summarize(records[g]) for g in GROUPS if records[g]}
    summaries["all"] = summarize(records["small"] + records["pgo"])

    print("\n=== per-crash breakdown (concurrency 1) ===")
    print(
        "steps: stackwalk = Stackwalker.walk (subprocess, spawn to exit); load = raw crash + "
        "dumps + previous processed crash from FS storage; modules = parse_modules "
        "(module list from the dump's bytes); symbols = "
        "SymbolsProvider.prepare; parse = parse_stackwalk; signature = siggen; json = "
        "processed crash serialization (1 save); fs_write = FS put (atomic write); "
        "other = rest of process_crash (history, notes, metrics, ...); event_build = "
        "SentryEventBuilder.build_with_payload (event + its JSON); envelope = "
        "SentryDelivery.envelope (event JSON given, + minidump when attached)"
    )
    for key in (*GROUPS, "all"):
        if key in summaries:
            print_breakdown(GROUP_LABEL.get(key, "all dumps"), summaries[key])
    if args.per_case:
        print_per_case(records_by_case)

    print("\n=== throughput (median over rounds) ===")
    tput = {}
    for concurrency in (1, 2):
        for group in GROUPS:
            values = throughput[concurrency][group]
            if not values:
                continue
            lat = latency[concurrency][group]
            tput[f"c{concurrency}_{group}"] = {
                "crashes_per_s": statistics.median(values),
                "latency_mean_ms": ms(statistics.fmean(lat)),
                "latency_max_ms": ms(max(lat)),
            }
            print(
                f"  concurrency {concurrency} ({concurrency} greenlet{'s' if concurrency > 1 else ''}), "
                f"{GROUP_LABEL[group]:42}: {statistics.median(values):7.2f} crashes/s, "
                f"per crash {ms(statistics.fmean(lat)):7.1f} ms mean, {ms(max(lat)):7.1f} ms max"
            )
    for group in GROUPS:
        if throughput[1][group] and throughput[2][group]:
            gain = statistics.median(throughput[2][group]) / statistics.median(throughput[1][group])
            print(f"  concurrency 2 / 1, {GROUP_LABEL[group]}: x{gain:.2f}")

    mem_end = memory()
    growth = rss_rounds[-1] - rss_rounds[0] if rss_rounds else 0.0
    print("\n=== memory (benchmark process) ===")
    print(
        f"  VmRSS start {mem_start['rss_mb']:.1f} MB, after warm-up {mem_after_warmup['rss_mb']:.1f} MB, "
        f"per round {', '.join(f'{v:.1f}' for v in rss_rounds)} MB; growth first->last round "
        f"{growth:+.1f} MB"
    )
    print(
        f"  peak RSS: VmHWM {mem_end['hwm_mb']:.1f} MB, ru_maxrss {mem_end['maxrss_mb']:.1f} MB; "
        f"largest stackwalker child ru_maxrss {mem_end['children_maxrss_mb']:.1f} MB"
    )

    print("\n=== vs the issue ===")
    print(ISSUE)
    for key in (*GROUPS, "all"):
        if key in summaries:
            s = summaries[key]
            verdict = "meets" if s["ratio"] <= TARGET_RATIO else "MISSES"
            print(
                f"  {GROUP_LABEL.get(key, 'all dumps'):42}: stackwalk "
                f"{s['stackwalk_min_ms']:.1f}-{s['stackwalk_max_ms']:.1f} ms, non-stackwalk "
                f"{s['non_stackwalk_mean_ms']:.2f} ms/crash, ratio {s['ratio']:.3f} -> {verdict} "
                f"(<= {TARGET_RATIO:.2f})"
            )
    bounded = growth <= max(5.0, 0.05 * rss_rounds[0]) if rss_rounds else True
    print(
        f"  memory: RSS growth over {args.rounds} rounds {growth:+.1f} MB -> "
        f"{'bounded' if bounded else 'GROWING'} (flat = within 5 MB or 5 %)"
    )

    if args.profile:
        profile_non_stackwalk(jobs, max(1, args.rounds), args.profile_limit)

    if args.json:
        figures = {
            "issue": ISSUE,
            "target_ratio": TARGET_RATIO,
            "corpus": str(CORPUS_DIR),
            "dumps": {g: len(js) for g, js in by_group.items()},
            "rounds": args.rounds,
            "breakdown": summaries,
            "throughput": tput,
            "memory": {
                "start": mem_start,
                "after_warmup": mem_after_warmup,
                "rss_per_round_mb": rss_rounds,
                "end": mem_end,
                "growth_mb": growth,
            },
            "per_case": {
                case_id: {
                    "bytes": size,
                    "mean_ms": {
                        s: ms(sum(r.get(s, 0.0) for r in recs) / len(recs)) for s in STEPS
                    },
                }
                for case_id, (size, recs) in records_by_case.items()
            },
        }
        with open(args.json, "w") as fp:
            json.dump(figures, fp, indent=2)
        print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
