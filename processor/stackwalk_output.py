"""Turn minidump_stackwalk's plain-text output into processed-crash fields.

Why the plain output and not ``-m``: the machine-readable format has no
absolute instruction addresses (only function-, line- or module-relative
offsets) and no frame trust, and running the stackwalker twice doubles the
CPU cost of every crash. The plain output has both: each frame's registers
(``rip``/``eip``/``pc``/...) and a ``Found by:`` line. What it lacks is the
debug file and debug id of modules that had symbols; those come from
:func:`processor.minidump_modules.parse_modules`, which the processor runs
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

_THREAD_START = "\nThread "
# What follows "Thread " on a thread's first line.
_THREAD = re.compile(r"(\d+)\b(.*)")
# One match per frame: its line (indented by at most one space, at a newline),
# then every line up to the next frame line. Of those, the regex keeps the text
# of the last "Found by:" line (with the space after the colon, so that an
# empty one still counts) and the hex digits of the program counter (rip, eip,
# pc or srr0 depending on the CPU) on the last register line (four spaces) that
# holds one: Breakpad prints the pc and then the trust after each frame. A
# Firefox dump has ~40k register lines: the regex engine goes through them
# without a match or any Python code per line (a match costs far more than a
# line inside one). The pc is found by jumping from "=" to "=" and looking
# behind for the name (first its last two letters, which rules out most
# registers at once): trying the names at every character costs several
# times more. Possessive quantifiers spare the engine backtracking records; not
# on the repeated group, whose captures CPython 3.11 then mishandles (gh-101955).
_FRAME = re.compile(
    r"\n ?(\d+)  (.*+)"
    r"(?:\n(?:"
    r"    Found by:( .*+)"
    r"|    (?:[^=\n]*+=)*?(?<=ip =|pc =|r0 =)"
    r"(?:(?<=[^a-z0-9]rip =)|(?<=[^a-z0-9]eip =)|(?<=[^a-z0-9]pc =)|(?<=[^a-z0-9]srr0 =))"
    r" 0x([0-9a-f]++).*+"
    r"|(?! ?\d+  ).*+"
    r"))*"
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
        return int(text, 16) if text.startswith(("0x", "0X")) else int(text)
    except ValueError:
        return None


def _split_sections(text):
    """Return (header lines, threads, module lines).

    A thread is (thread number, marker, its text, where its body starts): the
    text begins after "Thread " and the body at the newline that ends that line.
    """
    before, _, module_text = text.partition("\nLoaded modules:\n")
    # Threads start at lines "Thread <digit>...". A plain split at "\nThread "
    # costs far less than a regex tried at every newline; the rare piece that
    # does not go on with a digit is glued back to the one before.
    header, *pieces = before.split(_THREAD_START)
    chunks = []
    for piece in pieces:
        if piece[:1].isdecimal():
            chunks.append(piece)
        elif chunks:
            chunks[-1] += _THREAD_START + piece
        else:
            header += _THREAD_START + piece
    threads = []
    for chunk in chunks:
        first = chunk.partition("\n")[0]
        match = _THREAD.match(first)
        if match:
            threads.append((int(match.group(1)), match.group(2), chunk, len(first)))
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
    """Plain "Loaded modules:" lines → list of tuples.

    A tuple is (base, end, filename, version, main, warning, debug_file, debug_id).
    """
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
        if warning:
            warning, debug_file, debug_id = warning.groups()
        else:
            warning = debug_file = debug_id = None
        modules.append(
            (
                int(match.group(1), 16),
                int(match.group(2), 16),
                filename or None,
                None if version in ("", "???") else version,
                main,
                warning,
                debug_file,
                debug_id,
            )
        )
    return modules


def _merge_modules(printed, read):
    """Combine the printed module list with parse_modules() output, matched by base.

    The printed list is authoritative (it is what the stackwalker used); the
    dump's own list adds debug file/id for modules that had symbols, and code
    ids. If the stackwalker printed nothing (it failed or timed out), the
    dump's list is still worth reporting. Returns tuples (filename,
    debug_file, debug_id, code_id, version, base, end, main, warning): a big
    dump has hundreds of modules, and tuples cost less than dicts.
    """
    by_base = {}
    for module in read or ():
        by_base.setdefault(_int(module.get("base_addr")), module)
    if not printed:
        printed = [
            (base, _int(m.get("end_addr")), m.get("filename"), None, False, None, None, None)
            for base, m in ((_int(m.get("base_addr")), m) for m in read or ())
            if base is not None
        ]
    merged = []
    no_extra = {}
    for base, end, filename, version, main, warning, debug_file, debug_id in printed:
        extra = by_base.get(base, no_extra)
        merged.append(
            (
                filename,
                extra.get("debug_file") or debug_file,
                extra.get("debug_id") or debug_id,
                extra.get("code_id") or None,
                version,
                base,
                end if end is not None else base,
                main,
                warning,
            )
        )
    return merged


class _ModuleIndex:
    """Find the module of a frame by address, or by the name it starts with.

    ``filenames``, ``bases`` and ``ends`` are those of the modules by position.
    """

    def __init__(self, modules):
        self.filenames = [module[0] for module in modules]
        self.bases = [module[5] for module in modules]
        self.ends = [module[6] for module in modules]
        self.order = sorted(range(len(modules)), key=self.bases.__getitem__)
        self.sorted_bases = [self.bases[i] for i in self.order]
        self.first_by_name = {}
        for position, filename in enumerate(self.filenames):
            if filename:
                self.first_by_name.setdefault(filename, position)
        # Longest names first, so "libfoo.so.1" wins over "libfoo.so".
        self.names = sorted(self.first_by_name, key=len, reverse=True)

    def at(self, address):
        position = bisect.bisect_right(self.sorted_bases, address) - 1
        if position >= 0:
            index = self.order[position]
            if address <= self.ends[index]:
                return index
        return None

    def split(self, text, address):
        """Return (module index or None, text after the module name)."""
        index = self.at(address) if address is not None else None
        if index is not None and self._starts(text, self.filenames[index]):
            return index, text[len(self.filenames[index]) :]
        for name in self.names:
            if self._starts(text, name):
                return self.first_by_name[name], text[len(name) :]
        return None, text

    @staticmethod
    def _starts(text, name):
        return text.startswith(name) and text[len(name) :].startswith(("!", " + 0x"))


def _parse_thread(text, start, index, caller_adjustment, parsed, used):
    """A thread's body (``text`` from ``start``) → frames; modules on the stack go to ``used``.

    Frames are read from the last one up: an inline frame takes the address of
    the frame printed after it. Lines before the first frame are ignored.

    ``parsed`` maps what a frame's fields depend on (its line, pc and trust,
    and for a frame without a pc the next frame's address) to those fields,
    shared by all threads of a dump: threads parked in the same wait functions
    print the same frames, so a Firefox dump has about five frames per
    distinct one. A repeated frame costs one dict lookup and one dict copy.
    """
    frames = []
    following = None  # instruction address of the next (outer) frame
    for number, frame_text, found_by, pc in reversed(_FRAME.findall(text, start)):
        key = (frame_text, pc, found_by, None if pc else following)
        cached = parsed.get(key)
        if cached is None:
            cached = parsed[key] = _parse_frame(
                frame_text, pc, found_by, following, index, caller_adjustment, used
            )
        following, fields = cached
        frame = fields.copy()
        frame["frame"] = int(number)
        frames.append(frame)
    frames.reverse()
    return frames


def _parse_frame(text, pc, found_by, following, index, caller_adjustment, used):
    """One frame → (its instruction address, its fields but the number).

    ``text`` is its line after the number, ``pc`` the hex digits of its
    program counter register and ``found_by`` the text of its "Found by:"
    line ("" if none), ``following`` the address of the next (outer) frame.
    The address comes from the registers; printed absolute and
    module-relative addresses take precedence because they are exact. Adds
    the frame's module to ``used``.
    """
    trust = TRUST_BY_DESCRIPTION.get(found_by.strip(), "none")
    if pc:
        # Breakpad prints caller frames at pc minus the call adjustment.
        address = int(pc, 16) - (0 if trust == "context" else caller_adjustment)
    elif trust == "inline":
        # Inline frames print no registers: they run at the address of the
        # physical frame that follows them.
        address = following
    else:
        address = None
    module = function = file = line = module_offset = function_offset = None
    absolute = _ABSOLUTE.match(text) if text.startswith("0x") else None
    if absolute:
        address = int(absolute.group(1), 16)
        module_index = None
    else:
        module_index, rest = index.split(text, address)
        if module_index is None:
            # A module missing from the list: cut at the first separator.
            cuts = [
                position
                for position in (text.find("!"), text.find(" + 0x"))
                if position >= 0
            ]
            cut = min(cuts) if cuts else len(text)
            module, rest = text[:cut] or None, text[cut:]
        else:
            used.add(module_index)
            module = index.filenames[module_index]
        if rest.startswith(" + 0x"):
            module_offset = _int(rest[3:])
            if module_index is not None and module_offset is not None:
                address = index.bases[module_index] + module_offset
        elif rest.startswith("!"):
            body = rest[1:]
            with_line = _WITH_LINE.match(body)
            with_offset = None if with_line else _WITH_OFFSET.match(body)
            if with_line:
                function = with_line.group(1) or None
                file = with_line.group(2) or None
                line = int(with_line.group(3))
            elif with_offset:
                function = with_offset.group(1) or None
                function_offset = int(with_offset.group(2), 16)
            else:
                function = body or None
        if module_index is not None and address is not None:
            module_offset = address - index.bases[module_index]
    # "frame" (the number) is set on each copy; first, as in every frame dict.
    return address, {
        "frame": None,
        "module": module,
        "function": function,
        "file": file,
        "line": line,
        "offset": _hex(address),
        "module_offset": _hex(module_offset),
        "function_offset": _hex(function_offset),
        "trust": trust,
    }


def parse_stackwalk(plain_output, modules=None):
    """Parse ``minidump_stackwalk <dump> [symbols]`` stdout into processed-crash fields.

    ``modules`` is :func:`processor.minidump_modules.parse_modules` output for the
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
    for thread_index, marker, thread_text, start in thread_sections:
        if "(" in marker and crashing_thread is None:
            # "(crashed)" or "(requested dump, did not crash)": Breakpad prints
            # the requesting thread first and marks it.
            crashing_thread = thread_index
        frames = _parse_thread(thread_text, start, index, adjustment, parsed, used)
        threads.append(
            {"thread_index": thread_index, "frame_count": len(frames), "frames": frames}
        )
    threads.sort(key=lambda thread: thread["thread_index"])

    out_modules, missing, main_module = [], [], None
    for position, (
        filename, debug_file, debug_id, code_id, version, base, end, main, warning
    ) in enumerate(merged):
        if main and main_module is None:
            main_module = position
        no_symbols = warning == "No"
        on_stack = position in used
        # A module without debug file or id can never get symbols: not worth listing.
        if no_symbols and on_stack and debug_file and debug_id:
            missing.append(f"{debug_file}/{debug_id}")
        out_modules.append(
            {
                "filename": filename,
                "debug_file": debug_file,
                "debug_id": debug_id,
                "code_id": code_id,
                "version": version,
                "base_addr": f"0x{base:x}",
                "end_addr": f"0x{end:x}",
                "loaded_symbols": on_stack and warning is None,
                "missing_symbols": no_symbols,
            }
        )
    result.update(
        crashing_thread=crashing_thread,
        threads=threads,
        modules=out_modules,
        missing_symbols=missing,
        main_module=main_module,
    )
    return result
