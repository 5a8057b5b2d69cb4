"""Signatures for real corpus crashes, built from the stackwalker's -m output."""

from pathlib import Path

import pytest
from everett.manager import ConfigManager

from processor.signature import SIGLISTS_DIR, SignatureMaker, signature_input

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
needs_corpus = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"minidump corpus not found at {CORPUS}"
)


def processed_from_m_txt(case, status="OK"):
    """A processed crash (the fields signatures use) from ``<source>/expected/<name>.m.txt``.

    Frame lines are ``thread|frame|module|function|file|line|offset``; the
    offset is module-relative for frames with a module and no function.
    """
    source, name = case.split("/")
    lines = (CORPUS / source / "expected" / f"{name}.m.txt").read_text().splitlines()
    crash = {"threads": [], "crashing_thread": None, "stackwalker": {"status": status}}
    for line in lines:
        fields = line.split("|")
        if fields[0] == "OS":
            crash["os_name"] = fields[1]
        elif fields[0] == "Crash":
            crash["reason"] = fields[1]
            crash["crashing_thread"] = int(fields[3]) if fields[3] else None
        elif fields[0].isdigit() and len(fields) == 7:
            thread, frame, module, function, file, line_no, offset = fields
            while len(crash["threads"]) <= int(thread):
                crash["threads"].append(
                    {"thread_index": len(crash["threads"]), "frames": []}
                )
            crash["threads"][int(thread)]["frames"].append(
                {
                    "frame": int(frame),
                    "module": module or None,
                    "function": function or None,
                    "file": file or None,
                    "line": int(line_no) if line_no else None,
                    "offset": offset,
                    "module_offset": offset if module and not function else None,
                    "function_offset": None,
                    "trust": "context" if frame == "0" else "cfi",
                }
            )
    return crash


def maker(**options):
    values = {f"PROCESSOR_{key.upper()}": str(value) for key, value in options.items()}
    return SignatureMaker(ConfigManager.from_dict(values).with_namespace("processor"))


@pytest.fixture(scope="module")
def signer():
    return maker()


@needs_corpus
@pytest.mark.parametrize(
    "case, expected",
    [
        ("generated/breakpad_segv", "crash_here"),
        # gsignal dropped, the glibc abort/fortify path kept as prefixes, then the caller.
        ("breakpad/linux_overflow", "abort | __fortify_fail | __chk_fail | overflow"),
        ("breakpad/minidump2", "(anonymous namespace)::CrashFunction"),
        ("breakpad/linux_null_read_av", "crash"),
        ("symbolic/crash_linux", "crash"),
        ("sentry-crash/windows", "main"),
        ("rust-minidump/pipeline-inlines-macos-segv", "core::ptr::write_volatile::<T>"),
        ("bugsplat/myQtCrasher", "MainWindow::on_pushButton_clicked"),
        # Unsymbolized: the module name, lower-cased on Windows.
        ("mozilla-pgo/windows-x86_64", "xul.dll"),
        ("mozilla-pgo/android-aarch64", "libxul.so"),
        # An unsymbolized libc frame is a prefix: the crash is in its caller.
        (
            "rust-minidump/simple-crashpad",
            "libsystem_kernel.dylib | libsystem_c.dylib | crashy",
        ),
        ("breakpad/stack_exhaustion", "stackoverflow | crashme.exe"),
    ],
)
def test_corpus_signatures(signer, case, expected):
    result = signer.generate(processed_from_m_txt(case))
    assert result["signature"] == expected
    # The proto signature is every normalized frame; the signature's frames are among them.
    frames = result["proto_signature"].split(" | ")
    assert all(
        part in frames for part in expected.split(" | ") if part != "stackoverflow"
    )
    assert isinstance(result["signature_notes"], list)


@needs_corpus
def test_proto_signature_lists_normalized_frames(signer):
    result = signer.generate(processed_from_m_txt("generated/breakpad_segv"))
    assert result["proto_signature"].startswith(
        "crash_here | level_two | level_one | main | libc.so.6"
    )
    assert any("not a prefix; stop" in line for line in result["signature_debug"])


@needs_corpus
def test_no_frames_is_empty_with_stackwalker_status(signer):
    crash = processed_from_m_txt("generated/lldb_segv", status="ERROR_NO_THREAD_LIST")
    assert all(not thread["frames"] for thread in crash["threads"])
    result = signer.generate(crash)
    assert result["signature"] == "EMPTY: no frame data available; ERROR_NO_THREAD_LIST"
    assert result["proto_signature"] == ""
    assert result["signature_notes"]


def test_failed_stackwalk_without_threads(signer):
    crash = {
        "crashing_thread": None,
        "threads": [],
        "stackwalker": {"status": "minidump could not be read"},
    }
    assert (
        signer.generate(crash)["signature"]
        == "EMPTY: no frame data available; minidump could not be read"
    )


def test_rust_panic_and_abort_message(signer):
    frames = [
        "__pthread_kill_implementation",
        "__pthread_kill_internal",
        "raise",
        "abort",
        "std::sys::pal::unix::abort_internal",
        "std::process::abort",
        "std::panicking::rust_panic_with_hook",
        "rust_begin_unwind",
        "core::panicking::panic_fmt",
        "core::result::unwrap_failed",
        "myapp::config::load",
        "myapp::main",
        "__libc_start_call_main",
    ]
    crash = {
        "crashing_thread": 0,
        "os_name": "Linux",
        "threads": [
            {
                "frames": [
                    {"frame": i, "module": "myapp", "function": f}
                    for i, f in enumerate(frames)
                ]
            }
        ],
    }
    result = signer.generate(
        crash, raw_crash={"AbortMessage": "called `Result::unwrap()` on an `Err` value"}
    )
    assert result["signature"] == (
        "Abort | called `Result::unwrap()` on an `Err` value | "
        "abort | core::result::unwrap_failed | myapp::config::load"
    )


def test_siglists_override(tmp_path):
    for path in SIGLISTS_DIR.glob("*.txt"):
        (tmp_path / path.name).write_text(path.read_text())
    with open(tmp_path / "prefix_signature_re.txt", "a") as fp:
        fp.write("level_two$\n")
    with open(tmp_path / "irrelevant_signature_re.txt", "a") as fp:
        fp.write("crash_here$\n")
    frames = ["crash_here", "level_two", "level_one", "main"]
    crash = {
        "crashing_thread": 0,
        "threads": [{"frames": [{"function": f} for f in frames]}],
    }
    assert maker().generate(crash)["signature"] == "crash_here"
    assert (
        maker(siglists_dir=tmp_path).generate(crash)["signature"]
        == "level_two | level_one"
    )


@needs_corpus
def test_only_the_crashing_thread_is_converted(signer):
    crash = processed_from_m_txt("generated/breakpad_segv")
    other = {"thread_index": len(crash["threads"]), "frames": [{"function": "other"}]}
    crash["threads"].append(other)
    crash_data = signature_input(crash)
    index = crash["crashing_thread"]
    assert len(crash_data["threads"]) == len(crash["threads"])
    assert crash_data["threads"][index]["frames"][0]["function"] == (
        crash["threads"][index]["frames"][0]["function"]
    )
    assert all(not t["frames"] for i, t in enumerate(crash_data["threads"]) if i != index)
