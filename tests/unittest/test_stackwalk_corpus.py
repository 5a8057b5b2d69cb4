"""The real stackwalker + parser on every corpus dump, against the expected outputs.

Expected values come from ``expected/<name>.m.txt`` (frames, modules, crash
fields) and ``expected/<name>.stackwalk.txt`` (registers, "Found by:"), read
here with deliberately naive code independent of processor.stackwalk_output.
"""

import os
from pathlib import PurePosixPath

import pytest
from everett.manager import ConfigManager

from processor.minidump_modules import parse_modules
from processor.stackwalk_output import parse_stackwalk
from processor.stackwalker import DEFAULT_STACKWALKER, Stackwalker
from tests import corpus

TOP = 5
TRUST = {
    "given as instruction pointer in context": "context",
    "call frame info": "cfi",
    "call frame info with scanning": "cfi_scan",
    "previous frame's frame pointer": "frame_pointer",
    "stack scanning": "scan",
    "inline record": "inline",
    "simulating a return from leaf function": "leaf",
}
# Breakpad prints caller frames at pc - N on these CPUs (StackFrame::ReturnAddress).
CALLER_ADJUSTMENT = {"arm": 2, "arm64": 4}
PC_NAMES = ("rip", "eip", "pc")


@pytest.fixture(scope="module")
def stackwalker():
    if not os.access(DEFAULT_STACKWALKER, os.X_OK):
        pytest.skip(
            f"minidump_stackwalk not found at {DEFAULT_STACKWALKER} (run bin/fetch_stackwalker.sh)"
        )
    return Stackwalker(ConfigManager.from_dict({}).with_namespace("processor"))


def read_m(path):
    """The ``-m`` file as {os, cpu, crash, modules, frames: {thread: [row]}}."""
    expected = {"frames": {}, "modules": []}
    for line in path.read_text(errors="replace").split("\n"):
        row = line.split("|")
        if row[0] in ("OS", "CPU", "Crash"):
            expected[row[0]] = row[1:]
        elif row[0] == "Module":
            expected["modules"].append(row[1:])
        elif row[0].isdigit():
            # thread|frame|module|function|file|line|offset ('|' is stripped from names)
            expected["frames"].setdefault(int(row[0]), []).append(row[2:])
    return expected


def read_plain(path):
    """{(thread, frame): {"pc": int or None, "found_by": str}} from the plain file."""
    frames, thread, current = {}, None, None
    for line in path.read_text(errors="replace").split("\n"):
        if line.startswith("Thread "):
            thread = int(line.split()[1])
        elif line.startswith("Loaded modules:"):
            thread = None
        elif (
            thread is not None
            and line[:4].strip().isdigit()
            and not line.startswith("    ")
        ):
            current = frames[(thread, int(line.split()[0]))] = {
                "pc": None,
                "found_by": None,
            }
        elif thread is not None and line.startswith("    Found by: "):
            current["found_by"] = line[len("    Found by: ") :]
        elif thread is not None and " = 0x" in line:
            words = line.split()
            for name in PC_NAMES:
                if name in words:
                    current["pc"] = int(words[words.index(name) + 2], 16)
    return frames


@pytest.mark.parametrize("case", corpus.params())
def test_stackwalk_matches_expected(stackwalker, case):
    result = stackwalker.walk(case.dump, case.symbol_dirs)
    assert (result.status, result.returncode) == ("ok", 0)
    processed = parse_stackwalk(result.output, parse_modules(case.dump.read_bytes()))
    expected = read_m(case.expected_m)
    plain = read_plain(case.expected_plain)

    os_name, os_version = expected["OS"]
    cpu_arch, cpu_info, cpu_count = expected["CPU"]
    reason, address, thread = expected["Crash"]
    assert processed["os_name"] == os_name
    assert processed["os_version"] == (os_version.strip() or None)
    assert (processed["cpu_arch"], processed["cpu_info"], processed["cpu_count"]) == (
        cpu_arch,
        cpu_info or None,
        int(cpu_count),
    )
    assert processed["reason"] == reason
    assert processed["address"] == (f"0x{int(address, 16):x}" if address else None)
    assert processed["crashing_thread"] == (int(thread) if thread else None)

    counts = {
        t["thread_index"]: t["frame_count"]
        for t in processed["threads"]
        if t["frame_count"]
    }
    assert counts == {index: len(rows) for index, rows in expected["frames"].items()}

    modules = processed["modules"]
    assert [
        (
            m["filename"],
            m["version"] or "",
            m["debug_file"] or "",
            m["debug_id"] or "",
            m["base_addr"],
            m["end_addr"],
        )
        for m in modules
    ] == [
        (r[0], r[1], r[2], r[3], f"0x{int(r[4], 16):x}", f"0x{int(r[5], 16):x}")
        for r in expected["modules"]
    ]
    mains = [index for index, row in enumerate(expected["modules"]) if row[6] == "1"]
    assert processed["main_module"] == (mains[0] if mains else None)
    warned = {(m["debug_file"], m["debug_id"]) for m in modules if m["missing_symbols"]}
    assert all(
        tuple(entry.split("/", 1)) in warned for entry in processed["missing_symbols"]
    )

    index = (
        processed["crashing_thread"] if processed["crashing_thread"] is not None else 0
    )
    frames = next(
        (t["frames"] for t in processed["threads"] if t["thread_index"] == index), []
    )
    for frame, (module, function, file, line, offset) in zip(
        frames[:TOP], expected["frames"].get(index, [])[:TOP], strict=True
    ):
        got = (frame["module"], frame["function"], frame["file"], frame["line"])
        basename = PurePosixPath(file.replace("\\", "/")).name
        assert got == (
            module or None,
            function or None,
            basename or None,
            int(line) if line else None,
        )
        offset = int(offset, 16)
        absolute = int(frame["offset"], 16)
        if not module:
            assert absolute == offset
        elif not function:
            assert int(frame["module_offset"], 16) == offset
        elif not file:
            assert int(frame["function_offset"], 16) == offset
        if module:
            containing = [
                m
                for m in modules
                if int(m["base_addr"], 16) <= absolute <= int(m["end_addr"], 16)
            ]
            assert [m["filename"] for m in containing] == [module]
            assert absolute == int(containing[0]["base_addr"], 16) + int(
                frame["module_offset"], 16
            )

    for frame in frames:
        printed = plain[(index, frame["frame"])]
        assert frame["trust"] == TRUST[printed["found_by"]]
        if printed["pc"] is not None:
            adjustment = (
                0 if frame["trust"] == "context" else CALLER_ADJUSTMENT.get(cpu_arch, 0)
            )
            assert int(frame["offset"], 16) == printed["pc"] - adjustment


@pytest.mark.parametrize("case", corpus.params(bad_input=True))
def test_bad_input_fails_cleanly(stackwalker, case):
    result = stackwalker.walk(case.dump, case.symbol_dirs)
    assert result.returncode not in (0, None)
    assert result.status.startswith("error")
    processed = parse_stackwalk(result.output, parse_modules(case.dump.read_bytes()))
    assert all(not thread["frames"] for thread in processed["threads"])
    assert processed["crashing_thread"] is None


def test_missing_dump_fails_cleanly(stackwalker, tmp_path):
    result = stackwalker.walk(tmp_path / "nope.dmp")
    assert result.status == "error: exit 1"
    assert (
        parse_stackwalk(result.output, [])["threads"]
        == []
    )

