"""Turn minidump_stackwalk's plain-text output into processed-crash fields.

Why the plain output and not ``-m``: the machine-readable format has no
absolute instruction addresses (only function-, line- or module-relative
offsets) and no frame trust, and running the stackwalker twice doubles the
CPU cost of every crash. The plain output has both: each frame's registers
(``rip``/``eip``/``pc``/...) and a ``Found by:`` line. What it lacks is the
debug file and debug id of modules that had symbols; those come from
:func:`processor.minidump_modules.read_modules`, which the processor runs
anyway (to fetch symbols) and which reads them from the dump in milliseconds.

Formats parsed here are Breakpad's ``stackwalk_common.cc`` (PrintProcessState,
PrintStack, PrintModules) as of commit 8988364b. Frame lines are one of::

    0x7ffd0000                                  no module
    libc.so.6 + 0x2724a                         module offset
    crash!main + 0x21                           function offset
    crash!main [crash.c : 23 + 0xa]             line offset; file is a basename

Module names may contain spaces and ``!``, function names anything (``|``,
``!``, brackets, ``[clone .cold]``), so a frame's module is identified through
the module list (by its instruction address, then by name) rather than by
splitting on separators, and file/line suffixes are matched at the end only.

Everything here is pure: strings and lists in, JSON-ready dicts out, no I/O.
Malformed or empty input yields empty fields, never an exception.
"""

import bisect
import re

# Breakpad's StackFrame::trust_description() → short names (Socorro's).
TRUST_BY_DESCRIPTION = {
    "given as instruction pointer in context": "context",
    "recovered by external stack walker": "prewalked",
    "call frame info": "cfi",
    "call frame info with scanning": "cfi_scan",
    "previous frame's frame pointer": "frame_pointer",
    "stack scanning": "scan",
    "inline record": "inline",
    "simulating a return from leaf function": "leaf",
}
# Breakpad prints a frame at StackFrame::ReturnAddress(): the pc register for
# x86/amd64, but for these CPUs the caller frames' pc minus this many bytes
# (so that the address falls inside the call instruction).
CALLER_ADJUSTMENT = {"arm": 2, "arm64": 4, "ppc": 4, "riscv": 4, "riscv64": 4}

_THREAD = re.compile(r"^Thread (\d+)\b(.*)$")
_THREAD_START = re.compile(r"\n(?=Thread \d)")
# One scan of a thread body finds, line by line: a frame line (indented by at
# most one space), its "Found by:" line, or a register line (four spaces) that
# holds the program counter (rip, eip, pc or srr0 depending on the CPU). Other
# lines (registers without the pc) match nothing and cost no Python code: a
# Firefox dump has ~40k register lines.
_FRAME_TOKEN = re.compile(
    r"^(?: ?(\d+)  (.*)"
    r"|    Found by: (.*)"
    r"|    .*?(?<![a-z0-9])(?:rip|eip|pc|srr0) = 0x([0-9a-f]+).*)$",
    re.MULTILINE,
)
_MODULE = re.compile(r"^0x([0-9a-f]+) - 0x([0-9a-f]+)  (.*)$")
_WARNING = re.compile(r"  \(WARNING: (No|Corrupt) symbols, (.*), ([0-9A-Za-z]*)\)$")
_CPU_COUNT = re.compile(r"^(\d+) CPUs?$")
_ABSOLUTE = re.compile(r"^0x([0-9a-f]+)$")
_WITH_LINE = re.compile(r"^(.*) \[(.*) : (\d+) \+ 0x([0-9a-f]+)\]$")
_WITH_OFFSET = re.compile(r"^(.*) \+ 0x([0-9a-f]+)$")


def _hex(value):
    return None if value is None else f"0x{value:x}"


def _int(text):
    if not isinstance(text, str):
        return None
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


def _split_sections(text):
    """Return (header lines, [(thread number, marker, body text)], module lines)."""
    before, _, module_text = text.partition("\nLoaded modules:\n")
    header, *chunks = _THREAD_START.split(before)
    threads = []
    for chunk in chunks:
        first, _, body = chunk.partition("\n")
        match = _THREAD.match(first)
        if match:
            threads.append((int(match.group(1)), match.group(2), body))
    return header.split("\n"), threads, module_text.split("\n")


def _parse_header(lines):
    info = {
        "os_name": None,
        "os_version": None,
        "cpu_arch": None,
        "cpu_info": None,
        "cpu_count": None,
        "reason": None,
        "address": None,
    }
    for index, line in enumerate(lines):
        if line.startswith("Operating system: "):
            info["os_name"] = line.partition(": ")[2].strip() or None
            if index + 1 < len(lines) and lines[index + 1].startswith("    "):
                info["os_version"] = lines[index + 1].strip() or None
        elif line.startswith("CPU: "):
            info["cpu_arch"] = line.partition(": ")[2].strip() or None
            # Then an optional cpu_info line and always "N CPU(s)".
            for detail in lines[index + 1 : index + 3]:
                detail = detail.strip()
                count = _CPU_COUNT.match(detail)
                if count:
                    info["cpu_count"] = int(count.group(1))
                    break
                if detail:
                    info["cpu_info"] = detail
        elif line.startswith("Crash reason:"):
            info["reason"] = line.partition(":")[2].strip() or None
        elif line.startswith("Crash address:"):
            info["address"] = _hex(_int(line.partition(":")[2].strip()))
        elif line == "No crash":
            info["reason"] = "No crash"
    return info


def _parse_module_lines(lines):
    """Plain "Loaded modules:" lines → list of dicts (base, end, filename, ...)."""
    modules = []
    for line in lines:
        match = _MODULE.match(line)
        if not match:
            continue
        rest = match.group(3)
        warning = _WARNING.search(rest)
        if warning:
            rest = rest[: warning.start()]
        main = rest.endswith("  (main)")
        if main:
            rest = rest[: -len("  (main)")]
        filename, separator, version = rest.rpartition("  ")
        if not separator:
            filename, version = rest, ""
        modules.append(
            {
                "base": int(match.group(1), 16),
                "end": int(match.group(2), 16),
                "filename": filename or None,
                "version": None if version in ("", "???") else version,
                "main": main,
                "warning": warning.group(1) if warning else None,
                "debug_file": warning.group(2) if warning else None,
                "debug_id": warning.group(3) if warning else None,
            }
        )
    return modules


def _merge_modules(printed, read):
    """Combine the printed module list with read_modules() output, matched by base.

    The printed list is authoritative (it is what the stackwalker used); the
    dump's own list adds debug file/id for modules that had symbols, and code
    ids. If the stackwalker printed nothing (it failed or timed out), the
    dump's list is still worth reporting.
    """
    by_base = {}
    for module in read or ():
        by_base.setdefault(_int(module.get("base_addr")), module)
    if not printed:
        printed = [
            {
                "base": _int(m.get("base_addr")),
                "end": _int(m.get("end_addr")),
                "filename": m.get("filename"),
                "version": None,
                "main": False,
                "warning": None,
                "debug_file": None,
                "debug_id": None,
            }
            for m in read or ()
            if _int(m.get("base_addr")) is not None
        ]
    merged = []
    for module in printed:
        extra = by_base.get(module["base"], {})
        merged.append(
            {
                "filename": module["filename"],
                "debug_file": extra.get("debug_file") or module["debug_file"],
                "debug_id": extra.get("debug_id") or module["debug_id"],
                "code_id": extra.get("code_id") or None,
                "version": module["version"],
                "base": module["base"],
                "end": module["end"] if module["end"] is not None else module["base"],
                "main": module["main"],
                "warning": module["warning"],
            }
        )
    return merged


class _ModuleIndex:
    """Find the module of a frame by address, or by the name it starts with."""

    def __init__(self, modules):
        self.modules = modules
        self.order = sorted(range(len(modules)), key=lambda i: modules[i]["base"])
        self.bases = [modules[i]["base"] for i in self.order]
        self.first_by_name = {}
        for position, module in enumerate(modules):
            if module["filename"]:
                self.first_by_name.setdefault(module["filename"], position)
        # Longest names first, so "libfoo.so.1" wins over "libfoo.so".
        self.names = sorted(self.first_by_name, key=len, reverse=True)

    def at(self, address):
        position = bisect.bisect_right(self.bases, address) - 1
        if position >= 0:
            index = self.order[position]
            if address <= self.modules[index]["end"]:
                return index
        return None

    def split(self, text, address):
        """Return (module index or None, text after the module name)."""
        index = self.at(address) if address is not None else None
        if index is not None and self._starts(text, self.modules[index]["filename"]):
            return index, text[len(self.modules[index]["filename"]) :]
        for name in self.names:
            if self._starts(text, name):
                return self.first_by_name[name], text[len(name) :]
        return None, text

    @staticmethod
    def _starts(text, name):
        return text.startswith(name) and text[len(name) :].startswith(("!", " + 0x"))


def _parse_frame_text(text, address, index):
    """One frame line (after its number) → (frame fields, module index or None).

    ``address`` is the frame's instruction address as far as the registers
    tell (None if unknown); printed absolute and module-relative addresses
    take precedence over it because they are exact.
    """
    frame = {
        "module": None,
        "function": None,
        "file": None,
        "line": None,
        "offset": address,
        "module_offset": None,
        "function_offset": None,
    }
    absolute = _ABSOLUTE.match(text)
    if absolute:
        frame["offset"] = int(absolute.group(1), 16)
        return frame, None
    module_index, rest = index.split(text, address)
    if module_index is None:
        # A module missing from the list: cut at the first separator.
        cuts = [
            position
            for position in (text.find("!"), text.find(" + 0x"))
            if position >= 0
        ]
        cut = min(cuts) if cuts else len(text)
        frame["module"], rest = text[:cut] or None, text[cut:]
    else:
        frame["module"] = index.modules[module_index]["filename"]
    if rest.startswith(" + 0x"):
        module_offset = _int(rest[3:])
        frame["module_offset"] = module_offset
        if module_index is not None and module_offset is not None:
            frame["offset"] = index.modules[module_index]["base"] + module_offset
    elif rest.startswith("!"):
        body = rest[1:]
        with_line = _WITH_LINE.match(body)
        with_offset = None if with_line else _WITH_OFFSET.match(body)
        if with_line:
            frame["function"] = with_line.group(1) or None
            frame["file"] = with_line.group(2) or None
            frame["line"] = int(with_line.group(3))
        elif with_offset:
            frame["function"] = with_offset.group(1) or None
            frame["function_offset"] = int(with_offset.group(2), 16)
        else:
            frame["function"] = body or None
    if module_index is not None and frame["offset"] is not None:
        frame["module_offset"] = frame["offset"] - index.modules[module_index]["base"]
    return frame, module_index


def _parse_thread(body, index, caller_adjustment, parsed):
    """Thread body text → (frames, set of module indexes on this stack).

    Lines are read from the last one up: an inline frame takes the address of
    the frame printed after it, and a frame's register and "Found by:" lines
    come after its own line (when several name the pc or the trust, the last
    one counts, i.e. the first one met going up). Lines before the first frame
    are ignored.

    ``parsed`` maps (frame text, address) to the frame's fields, shared by
    all threads of a dump: threads parked in the same wait functions print
    the same frames, so a Firefox dump has about five frames per distinct one.
    """
    frames, used = [], set()
    following = None  # instruction address of the next (outer) frame
    pc = trust = None  # of the frame whose lines are being read
    for number, text, found_by, pc_digits in reversed(_FRAME_TOKEN.findall(body)):
        if not number:
            if pc_digits:
                if pc is None:
                    pc = int(pc_digits, 16)
            elif trust is None:
                trust = TRUST_BY_DESCRIPTION.get(found_by.strip(), "none")
            continue
        if trust is None:
            trust = "none"
        if pc is not None:
            # Breakpad prints caller frames at pc minus the call adjustment.
            address = pc - (0 if trust == "context" else caller_adjustment)
        elif trust == "inline":
            # Inline frames print no registers: they run at the address of
            # the physical frame that follows them.
            address = following
        else:
            address = None
        key = (text, address)
        fields = parsed.get(key)
        if fields is None:
            frame, module_index = _parse_frame_text(text, address, index)
            fields = parsed[key] = (
                frame["offset"],
                module_index,
                frame["module"],
                frame["function"],
                frame["file"],
                frame["line"],
                _hex(frame["offset"]),
                _hex(frame["module_offset"]),
                _hex(frame["function_offset"]),
            )
        (following, module_index, module, function, file, line,
         offset, module_offset, function_offset) = fields
        if module_index is not None:
            used.add(module_index)
        frames.append(
            {
                "frame": int(number),
                "module": module,
                "function": function,
                "file": file,
                "line": line,
                "offset": offset,
                "module_offset": module_offset,
                "function_offset": function_offset,
                "trust": trust,
            }
        )
        pc = trust = None
    frames.reverse()
    return frames, used


def parse_stackwalk(plain_output, modules=None):
    """Parse ``minidump_stackwalk <dump> [symbols]`` stdout into processed-crash fields.

    ``modules`` is :func:`processor.minidump_modules.read_modules` output for the
    same dump (optional: without it, modules that had symbols have no debug
    file/id). Returns a dict with ``os_name``, ``os_version``, ``cpu_arch``,
    ``cpu_info``, ``cpu_count``, ``reason``, ``address``, ``crashing_thread``,
    ``threads``, ``modules``, ``missing_symbols`` and ``main_module``.

    Frame ``offset`` is the absolute instruction address (the frame's program
    counter; an inline frame takes its caller's). ``module_offset`` is
    ``offset`` minus the module's base. ``function_offset`` is only known when
    the frame has a function but no source line (Breakpad prints line-relative
    offsets otherwise). ``file`` is a basename: the plain output strips paths.
    """
    text = (plain_output or "").replace("\r", "")
    header, thread_sections, module_lines = _split_sections(text)
    result = _parse_header(header)
    merged = _merge_modules(_parse_module_lines(module_lines), modules)
    index = _ModuleIndex(merged)
    adjustment = CALLER_ADJUSTMENT.get(result["cpu_arch"], 0)

    crashing_thread = None
    threads, used, parsed = [], set(), {}
    for thread_index, marker, body in thread_sections:
        if "(" in marker and crashing_thread is None:
            # "(crashed)" or "(requested dump, did not crash)": Breakpad prints
            # the requesting thread first and marks it.
            crashing_thread = thread_index
        frames, thread_used = _parse_thread(body, index, adjustment, parsed)
        used |= thread_used
        threads.append(
            {"thread_index": thread_index, "frame_count": len(frames), "frames": frames}
        )
    threads.sort(key=lambda thread: thread["thread_index"])

    out_modules, missing = [], []
    for position, module in enumerate(merged):
        no_symbols = module["warning"] == "No"
        # A module without debug file or id can never get symbols: not worth listing.
        if (
            no_symbols
            and position in used
            and module["debug_file"]
            and module["debug_id"]
        ):
            missing.append("{}/{}".format(module["debug_file"], module["debug_id"]))
        out_modules.append(
            {
                "filename": module["filename"],
                "debug_file": module["debug_file"],
                "debug_id": module["debug_id"],
                "code_id": module["code_id"],
                "version": module["version"],
                "base_addr": _hex(module["base"]),
                "end_addr": _hex(module["end"]),
                "loaded_symbols": position in used and module["warning"] is None,
                "missing_symbols": no_symbols,
            }
        )
    result.update(
        crashing_thread=crashing_thread,
        threads=threads,
        modules=out_modules,
        missing_symbols=missing,
        main_module=next((i for i, m in enumerate(merged) if m["main"]), None),
    )
    return result
