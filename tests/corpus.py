"""Locate the shared minidump corpus and list its cases for parametrized tests.

The corpus (real dumps, symbols, expected stackwalker output; see its
README.md) lives beside the repository, at ``../shared/corpus`` from the repo
root, and is not part of it. When it is absent, :func:`params` yields one
skipped parameter that says where it was looked for.
"""

from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS_DIR = REPO_ROOT.parent / "shared" / "corpus"
BAD_INPUT = "bad-input"


@dataclass(frozen=True)
class Case:
    """One dump: ``<source>/<name>.dmp``, its symbols folder and expected outputs."""

    source: str
    name: str
    dump: Path
    symbols: Path | None
    expected_m: Path | None
    expected_plain: Path | None

    @property
    def id(self):
        return f"{self.source}/{self.name}"

    @property
    def symbol_dirs(self):
        return [self.symbols] if self.symbols else []


def cases():
    """Every case of the corpus (bad-input files included), sorted; [] if absent."""
    if not CORPUS_DIR.is_dir():
        return []
    found = []
    for source in sorted(path for path in CORPUS_DIR.iterdir() if path.is_dir()):
        symbols = source / "symbols"
        expected = source / "expected"
        for dump in sorted(source.iterdir()):
            if not dump.is_file() or (
                dump.suffix != ".dmp" and source.name != BAD_INPUT
            ):
                continue
            m_txt = expected / (dump.stem + ".m.txt")
            plain = expected / (dump.stem + ".stackwalk.txt")
            found.append(
                Case(
                    source=source.name,
                    name=dump.stem,
                    dump=dump,
                    symbols=symbols if symbols.is_dir() else None,
                    expected_m=m_txt if m_txt.is_file() else None,
                    expected_plain=plain if plain.is_file() else None,
                )
            )
    return found


def params(bad_input=False):
    """pytest params of the good dumps (or of bad-input/), or one skip if no corpus."""
    if not CORPUS_DIR.is_dir():
        reason = f"minidump corpus not found at {CORPUS_DIR}"
        return [
            pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-corpus")
        ]
    return [
        pytest.param(case, id=case.id)
        for case in cases()
        if (case.source == BAD_INPUT) == bad_input
    ]
