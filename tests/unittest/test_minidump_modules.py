"""parse_modules against the stackwalker's own module list for every corpus dump."""

import glob
import os
from pathlib import Path

import pytest

from processor.minidump_modules import parse_modules

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
needs_corpus = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"minidump corpus not found at {CORPUS}"
)


def expected_cases():
    """(dump, expected .m.txt) pairs; empty when the corpus is absent."""
    cases = []
    for expected in sorted(glob.glob(str(CORPUS / "*" / "expected" / "*.m.txt"))):
        source = Path(expected).parent.parent
        dump = source / (Path(expected).name[: -len(".m.txt")] + ".dmp")
        cases.append(
            pytest.param(dump, Path(expected), id=f"{source.name}/{dump.stem}")
        )
    return cases


def module_lines(expected):
    """``Module|code_file|version|debug_file|debug_id|base|end|main`` lines, by base."""
    rows = [
        line.split("|")
        for line in expected.read_text().splitlines()
        if line.startswith("Module|")
    ]
    return sorted((row[1], row[3], row[4], row[5], row[6]) for row in rows)


@needs_corpus
@pytest.mark.parametrize("dump, expected", expected_cases())
def test_modules_match_stackwalker(dump, expected):
    modules = parse_modules(dump.read_bytes())
    got = sorted(
        (m["filename"], m["debug_file"], m["debug_id"], m["base_addr"], m["end_addr"])
        for m in modules
    )
    assert got == module_lines(expected)


@needs_corpus
def test_code_ids():
    by_name = {
        m["filename"]: m for m in parse_modules((CORPUS / "breakpad" / "minidump2.dmp").read_bytes())
    }
    # PE: TimeDateStamp + SizeOfImage, as Breakpad prints it.
    assert by_name["test_app.exe"]["code_id"] == "45D35F6C2d000"
    by_name = {
        m["filename"]: m
        for m in parse_modules((CORPUS / "generated" / "breakpad_segv.dmp").read_bytes())
    }
    # ELF: the full build id, in file byte order.
    assert by_name["crash_bp"]["code_id"].startswith("0701188c1c3473")


@needs_corpus
@pytest.mark.parametrize(
    "name", sorted(os.listdir(CORPUS / "bad-input")) if CORPUS.is_dir() else []
)
def test_bad_input_returns_empty(name):
    assert parse_modules((CORPUS / "bad-input" / name).read_bytes()) == []


def test_empty_and_garbage():
    assert parse_modules(b"") == []
    assert parse_modules(b"MDMP\x93\xa7\x00\x00" + b"\xff" * 5000) == []
