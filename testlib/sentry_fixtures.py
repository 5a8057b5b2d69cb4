"""Realistic processed crashes for Sentry tests, built from the corpus' stackwalker output.

The ``-m`` output (``<name>.m.txt``) gives modules and symbolized frames but only relative
offsets; the human-readable output (``<name>.stackwalk.txt``) gives each frame's absolute
instruction pointer and how it was found. Together they yield the DESIGN.md processed-crash
shape without running the stackwalker, so the Sentry tests do not depend on the processor.
"""

import pathlib
import re

CORPUS = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"

_TRUST = {
    "given as instruction pointer in context": "context",
    "call frame info": "cfi",
    "stack scanning": "scan",
    "previous frame's frame pointer": "frame_pointer",
    "inline record": "inline",
    "simulating a return from leaf function": "leaf",
}
_PC_RE = re.compile(r"\b(?:rip|eip|pc)\s*=\s*(0x[0-9a-f]+)")


def _stackwalk_addresses(text):
    """{(thread, frame): (absolute pc, trust)} from the human-readable output."""
    result = {}
    thread = None
    pending = []  # inline frames share the pc of the physical frame that follows them
    current = None
    for line in text.splitlines():
        header = re.match(r"^Thread (\d+)", line)
        if header:
            thread, current, pending = int(header.group(1)), None, []
            continue
        if line.startswith("Loaded modules"):
            break
        frame = re.match(r"^\s?(\d+)\s{2}\S", line)
        if thread is not None and frame:
            current = (thread, int(frame.group(1)))
            result[current] = [None, None]
            continue
        if current is None:
            continue
        pc = _PC_RE.search(line)
        if pc:
            result[current][0] = pc.group(1)
            for key in pending:
                result[key][0] = pc.group(1)
            pending = []
        found = re.match(r"^\s+Found by: (.*)$", line)
        if found:
            result[current][1] = _TRUST.get(found.group(1).strip(), "unknown")
            if result[current][0] is None:
                pending.append(current)
    return result


def processed_crash_from_corpus(source, name, crash_id, signature=None):
    """Build a processed crash dict for corpus case ``<source>/<name>``."""
    expected = CORPUS / source / "expected"
    m_lines = (expected / f"{name}.m.txt").read_text().splitlines()
    addresses = _stackwalk_addresses((expected / f"{name}.stackwalk.txt").read_text())
    pc = {
        "crash_id": crash_id, "modules": [], "threads": [], "processor_notes": [],
        "success": True, "crashing_thread": None, "reason": None, "address": None,
        "stackwalker": {"status": "ok", "returncode": 0},
    }
    modules = {}
    threads = {}
    for line in m_lines:
        parts = line.split("|")
        if parts[0] == "OS":
            pc["os_name"], pc["os_version"] = parts[1], parts[2]
        elif parts[0] == "CPU":
            pc["cpu_arch"], pc["cpu_info"], pc["cpu_count"] = parts[1], parts[2], int(parts[3])
        elif parts[0] == "Crash":
            pc["reason"], pc["address"] = parts[1], parts[2]
            pc["crashing_thread"] = int(parts[3]) if parts[3] else None
        elif parts[0] == "Module":
            module = {
                "filename": parts[1], "version": parts[2] or None, "debug_file": parts[3],
                "debug_id": parts[4], "code_id": None, "base_addr": parts[5],
                "end_addr": parts[6], "loaded_symbols": False, "missing_symbols": True,
            }
            modules[parts[1]] = module
            pc["modules"].append(module)
        elif len(parts) == 7 and parts[0].isdigit():
            thread, number = int(parts[0]), int(parts[1])
            module, function, file, line_no, offset = parts[2:]
            absolute, trust = addresses.get((thread, number), (None, None))
            base = int(modules[module]["base_addr"], 16) if module in modules else None
            frame = {
                "frame": number, "module": module or None, "function": function or None,
                "file": file or None, "line": int(line_no) if line_no else None,
                "offset": absolute or offset,
                "module_offset": hex(int(absolute, 16) - base) if absolute and base else None,
                "function_offset": offset if function else None,
                "trust": trust or "unknown",
            }
            threads.setdefault(thread, []).append(frame)
    pc["threads"] = [
        {"thread_index": index, "frame_count": len(frames), "frames": frames}
        for index, frames in sorted(threads.items())
    ]
    top = (threads.get(pc["crashing_thread"]) or [{}])[0]
    pc["signature"] = signature or top.get("function") or f"{top.get('module')}@{top.get('offset')}"
    return pc
