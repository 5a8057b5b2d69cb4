"""Stackwalker (process handling, config, version) and the plain-output parser's edge cases."""

import json
import os
import stat
import time

import gevent
import pytest
from everett.manager import ConfigManager

from processor.stackwalk_output import parse_stackwalk
from processor.stackwalker import DEFAULT_STACKWALKER, Stackwalker
from tests import corpus


def make_stackwalker(**options):
    values = {"PROCESSOR_" + key.upper(): str(value) for key, value in options.items()}
    return Stackwalker(ConfigManager.from_dict(values).with_namespace("processor"))


def fake_stackwalker(tmp_path, body):
    """An executable shell script standing in for minidump_stackwalk."""
    script = tmp_path / "minidump_stackwalk"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


# --- Stackwalker ---------------------------------------------------------------------------


def test_config_defaults_and_env_names():
    walker = make_stackwalker()
    assert walker.config("stackwalker") == str(DEFAULT_STACKWALKER)
    assert DEFAULT_STACKWALKER.parts[-6:-1] == (
        ".cache",
        "minidump",
        "package",
        "bin",
        "linux-x64",
    )
    assert walker.config("stackwalker_timeout") == 120.0
    assert walker.config("stackwalker_stderr") is False
    walker = make_stackwalker(stackwalker_timeout="5", stackwalker_stderr="true")
    assert walker.config("stackwalker_timeout") == 5.0
    assert walker.config("stackwalker_stderr") is True


def test_success_records_command_and_output(tmp_path):
    script = fake_stackwalker(tmp_path, 'echo "args: $*"; echo noise >&2')
    result = make_stackwalker(stackwalker=script).walk(
        tmp_path / "a b.dmp", [tmp_path / "syms"]
    )
    assert (result.status, result.returncode, result.ok) == ("ok", 0, True)
    assert result.output == "args: {} {}\n".format(
        tmp_path / "a b.dmp", tmp_path / "syms"
    )
    assert result.command == "{} '{}' {}".format(
        script, tmp_path / "a b.dmp", tmp_path / "syms"
    )
    assert result.stderr_tail == ""  # stderr goes to /dev/null by default
    assert set(result.as_dict()) == {
        "command",
        "returncode",
        "status",
        "stderr_tail",
        "version",
        "seconds",
    }
    assert 0 <= result.seconds < 5


def test_error_exit_keeps_stderr_tail(tmp_path):
    script = fake_stackwalker(
        tmp_path, 'for i in $(seq 1 30); do echo "line $i" >&2; done; exit 3'
    )
    result = make_stackwalker(stackwalker=script, stackwalker_stderr="true").walk(
        "x.dmp"
    )
    assert (result.status, result.returncode, result.ok) == ("error: exit 3", 3, False)
    assert result.stderr_tail.split("\n") == [f"line {i}" for i in range(11, 31)]


def test_killed_by_signal(tmp_path):
    script = fake_stackwalker(tmp_path, "kill -SEGV $$")
    result = make_stackwalker(stackwalker=script).walk("x.dmp")
    assert result.status == "error: killed by SIGSEGV"
    assert result.returncode == -11


def test_not_found(tmp_path):
    result = make_stackwalker(stackwalker=tmp_path / "missing").walk("x.dmp")
    assert (result.status, result.returncode, result.output) == ("not found", None, "")
    assert result.version == "unknown"


def test_timeout_kills_the_whole_process_group(tmp_path):
    # sh forks sleep (no exec): killing only sh would leave the pipe open for 30 s.
    script = fake_stackwalker(tmp_path, "echo partial; sleep 30; echo never")
    start = time.monotonic()
    result = make_stackwalker(stackwalker=script, stackwalker_timeout="0.3").walk(
        "x.dmp"
    )
    elapsed = time.monotonic() - start
    assert result.status == "timeout"
    assert result.returncode == -9
    assert result.output == ""
    assert 0.3 <= result.seconds < 2 and elapsed < 2


def test_walk_does_not_block_the_hub(tmp_path):
    script = fake_stackwalker(tmp_path, "sleep 0.5")
    ticks = []

    def ticker():
        while True:
            ticks.append(time.monotonic())
            gevent.sleep(0.01)

    background = gevent.spawn(ticker)
    try:
        result = make_stackwalker(stackwalker=script).walk("x.dmp")
    finally:
        background.kill()
    assert result.status == "ok"
    assert len(ticks) >= 20


def test_version_from_package_json(tmp_path):
    bin_dir = tmp_path / "package" / "bin" / "linux-x64"
    bin_dir.mkdir(parents=True)
    script = fake_stackwalker(bin_dir, "true")
    (tmp_path / "package" / "package.json").write_text(
        json.dumps({"name": "minidump", "version": "0.26.0"})
    )
    assert (
        make_stackwalker(stackwalker=script).version
        == "minidump@0.26.0 (breakpad 8988364b)"
    )
    (tmp_path / "package" / "package.json").write_text(
        json.dumps({"name": "minidump", "version": "9.9.9"})
    )
    assert make_stackwalker(stackwalker=script).version == "minidump@9.9.9"


def test_real_stackwalker_times_out_on_big_dump():
    if not os.access(DEFAULT_STACKWALKER, os.X_OK):
        pytest.skip(
            f"minidump_stackwalk not found at {DEFAULT_STACKWALKER} (run bin/fetch_stackwalker.sh)"
        )
    big = corpus.CORPUS_DIR / "mozilla-pgo" / "android-arm.dmp"
    if not big.is_file():
        pytest.skip(f"minidump corpus not found at {corpus.CORPUS_DIR}")
    result = make_stackwalker(stackwalker_timeout="0.02").walk(
        big, [big.parent / "symbols"]
    )
    assert result.status == "timeout"
    assert result.seconds < 1
    assert result.version == "minidump@0.26.0 (breakpad 8988364b)"


# --- parse_stackwalk -------------------------------------------------------------------------

ODD = """\
Operating system: Linux
                  5.10 test
CPU: arm64
     8 CPUs

GPU: UNKNOWN

No crash
Process uptime: not available

Thread 1 (requested dump, did not crash)
 0  odd lib!x!ns::operator|(a, b) [clone .cold] [file with space.cc : 12 + 0x4]

    Found by: inline record
 1  odd lib!x!operator|| + 0x10
     x0 = 0x0000000000000000    x1 = 0x0000000000000001
     pc = 0x0000000000401014
    Found by: given as instruction pointer in context
 2  odd lib!x!std::vector<int>::operator[](unsigned long) const [vector : 7 + 0x0]
     fp = 0x0000000000000000    pc = 0x0000000000402008
    Found by: call frame info
 3  odd lib + 0x10
     pc = 0x0000000000500014
    Found by: stack scanning
 4  0xdeadbeef
     pc = 0x00000000deadbef3
    Found by: something new

Thread 0
 <no frames>

Loaded modules:
0x00400000 - 0x00410fff  odd lib!x  1.2.3.4  (main)
0x00500000 - 0x00500fff  odd lib  ???  (WARNING: No symbols, odd lib.pdb, ABC1)
0x00600000 - 0x00600fff  spare  ???  (WARNING: Corrupt symbols, spare, DEF2)
"""


def test_parse_odd_names_inline_and_arm64_adjustment():
    read = [
        {
            "base_addr": "0x00400000",
            "debug_file": "oddlib.sym",
            "debug_id": "AAA0",
            "code_id": "c0de",
        }
    ]
    processed = parse_stackwalk(ODD.replace("\n", "\r\n"), read)
    assert processed["os_name"] == "Linux" and processed["os_version"] == "5.10 test"
    assert (processed["cpu_arch"], processed["cpu_info"], processed["cpu_count"]) == (
        "arm64",
        None,
        8,
    )
    assert (
        processed["reason"],
        processed["address"],
        processed["crashing_thread"],
    ) == ("No crash", None, 1)
    assert [t["thread_index"] for t in processed["threads"]] == [0, 1]
    assert processed["threads"][0] == {
        "thread_index": 0,
        "frame_count": 0,
        "frames": [],
    }
    frames = processed["threads"][1]["frames"]
    assert frames[0] == {
        "frame": 0,
        "module": "odd lib!x",
        "function": "ns::operator|(a, b) [clone .cold]",
        "file": "file with space.cc",
        "line": 12,
        "offset": "0x401014",  # an inline frame runs at its caller's address
        "module_offset": "0x1014",
        "function_offset": None,
        "trust": "inline",
    }
    assert (
        frames[1]["function"],
        frames[1]["function_offset"],
        frames[1]["offset"],
    ) == (
        "operator||",
        "0x10",
        "0x401014",
    )
    assert frames[2]["function"] == "std::vector<int>::operator[](unsigned long) const"
    assert (frames[2]["offset"], frames[2]["trust"]) == (
        "0x402004",
        "cfi",
    )  # arm64 caller: pc - 4
    assert (frames[3]["module"], frames[3]["offset"], frames[3]["module_offset"]) == (
        "odd lib",
        "0x500010",
        "0x10",
    )
    assert (frames[4]["module"], frames[4]["offset"], frames[4]["trust"]) == (
        None,
        "0xdeadbeef",
        "none",
    )

    main, no_symbols, corrupt = processed["modules"]
    assert processed["main_module"] == 0
    assert main == {
        "filename": "odd lib!x",
        "debug_file": "oddlib.sym",
        "debug_id": "AAA0",
        "code_id": "c0de",
        "version": "1.2.3.4",
        "base_addr": "0x400000",
        "end_addr": "0x410fff",
        "loaded_symbols": True,
        "missing_symbols": False,
    }
    assert (no_symbols["debug_file"], no_symbols["version"]) == ("odd lib.pdb", None)
    assert (no_symbols["loaded_symbols"], no_symbols["missing_symbols"]) == (
        False,
        True,
    )
    assert (corrupt["loaded_symbols"], corrupt["missing_symbols"]) == (False, False)
    assert processed["missing_symbols"] == ["odd lib.pdb/ABC1"]


@pytest.mark.parametrize(
    "output", ["", "garbage\n\x00\n", "Thread x\nLoaded modules:\n0xzz\n"]
)
def test_parse_empty_or_garbage(output):
    processed = parse_stackwalk(output)
    assert processed == {
        "os_name": None,
        "os_version": None,
        "cpu_arch": None,
        "cpu_info": None,
        "cpu_count": None,
        "reason": None,
        "address": None,
        "crashing_thread": None,
        "threads": [],
        "modules": [],
        "missing_symbols": [],
        "main_module": None,
    }


def test_parse_without_output_keeps_dump_modules():
    # A timed-out stackwalk prints nothing; the dump's own module list still counts.
    read = [
        {
            "filename": "a.so",
            "base_addr": "0x1000",
            "end_addr": "0x1fff",
            "debug_file": "a.so",
            "debug_id": "01",
        }
    ]
    (module,) = parse_stackwalk("", read)["modules"]
    assert (
        module["filename"],
        module["base_addr"],
        module["end_addr"],
        module["debug_id"],
    ) == (
        "a.so",
        "0x1000",
        "0x1fff",
        "01",
    )
    assert (module["loaded_symbols"], module["missing_symbols"]) == (False, False)


def test_parse_crashed_thread_and_frame_without_registers():
    output = """\
Operating system: Windows NT
                  10.0.1
CPU: x86
     GenuineIntel family 6 model 1 stepping 1
     1 CPU

GPU: UNKNOWN

Crash reason:  EXCEPTION_ACCESS_VIOLATION_WRITE
Crash address: 0x00000045
Process uptime: 2 seconds

Thread 3 (crashed)
 0  app.exe + 0x20
    Found by: previous frame's frame pointer

Loaded modules:
0x00400000 - 0x00500fff  app.exe  1.0.0.0  (main)
"""
    processed = parse_stackwalk(output)
    assert processed["cpu_info"] == "GenuineIntel family 6 model 1 stepping 1"
    assert (processed["cpu_count"], processed["reason"], processed["address"]) == (
        1,
        "EXCEPTION_ACCESS_VIOLATION_WRITE",
        "0x45",
    )
    assert processed["crashing_thread"] == 3
    (frame,) = processed["threads"][0]["frames"]
    assert (frame["offset"], frame["module_offset"], frame["trust"]) == (
        "0x400020",
        "0x20",
        "frame_pointer",
    )
    assert processed["modules"][0]["loaded_symbols"] is True


def test_parse_frame_lines_last_pc_and_trust_count():
    # Hand-edited output: several pc lines or "Found by:" lines after one frame (the
    # last counts; within a line, the first pc register), a register that only ends
    # in "pc", an empty "Found by:", lines before the first frame, and a "Thread"
    # line that starts no thread.
    output = """\
CPU: amd64

Thread 0 (crashed)
    rip = 0x0000000000000999
    Found by: stack scanning
 0  app + 0x10
    rip = 0x0000000000001010   rsp = 0x0000000000000001
    Found by: stack scanning
    xrip = 0x0000000000000555   eip = 0x0000000000001020   rip = 0x0000000000001030
    Found by: given as instruction pointer in context
 1  app!g
    npc = 0x0000000000002222
    rip = 0x0000000000001040
    Found by: call frame info
    Found by:<empty>
 2  app!f [f.c : 3 + 0x1]
    Found by: stack scanning
Thread x
    rip = 0x0000000000001050
    Found by: inline record
    Found by:no space, not a trust line

Loaded modules:
0x00001000 - 0x00001fff  app  1.0  (main)
""".replace("<empty>", " ")
    frames = parse_stackwalk(output)["threads"][0]["frames"]
    assert [(f["offset"], f["trust"]) for f in frames] == [
        ("0x1010", "context"),  # the printed module offset beats the pc
        ("0x1040", "none"),  # "npc" is not the pc; an empty "Found by:" still counts
        ("0x1050", "inline"),  # the lines after "Thread x" still belong to frame 2
    ]
    assert (frames[2]["function"], frames[2]["module_offset"]) == ("f", "0x50")
