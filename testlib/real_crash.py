"""Make a real crash: a small program, linked with Breakpad's client, that dumps and dies.

Synthesized minidumps and third-party corpus dumps cannot show that the whole pipeline is right
for a crash *we* made: with our symbols, our function names and our line numbers. This module
builds Breakpad's Linux client library from the Breakpad source shipped in the npm
``minidump@0.26.0`` tarball (the same commit as our stackwalker, so writer and reader agree),
compiles ``crash_program/crash_target.cc`` against it, runs it until it writes a minidump, and
stores the program's symbols (made by the tarball's ``dump_syms``) in a Breakpad symbol folder.

Usage::

    python -m testlib.real_crash OUT_DIR   # prints the dump path and the symbols dir

Output layout: ``OUT_DIR/crash.dmp``, ``OUT_DIR/symbols/<debug_file>/<debug_id>/<name>.sym``
and ``OUT_DIR/build/crash_target`` (the binary). tests/data/sample-crash/ was made this way.
"""

import argparse
import fcntl
import hashlib
import os
import pathlib
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE_DIR = REPO_ROOT / ".cache" / "minidump" / "package"
DEPS_DIR = PACKAGE_DIR / "deps"
DUMP_SYMS = PACKAGE_DIR / "bin" / "linux-x64" / "dump_syms"
MAKE_SYMBOLS = REPO_ROOT / "bin" / "make_symbols.sh"
DEFAULT_CLIENT_CACHE = REPO_ROOT / ".cache" / "breakpad-client"
SOURCE = pathlib.Path(__file__).resolve().parent / "crash_program" / "crash_target.cc"
PROGRAM_NAME = "crash_target"
LIBRARY = "breakpad/src/client/linux/libbreakpad_client.a"

# The crashing thread's symbolized frames, innermost first: (function, line) in
# crash_target.cc as dump_syms names them (C++ signatures). Callers' lines are the call sites.
EXPECTED_FRAMES = (
    ("crash_here(int*)", 18),
    ("level_two(int*)", 22),
    ("level_one(int*)", 26),
    ("main", 37),
)
EXPECTED_FILE = "crash_target.cc"

# Debug info records absolute source paths; map them to stable relative ones so symbol files
# (and the Sentry events made from them) carry neither this machine's paths nor its user.
PREFIX_MAP = "-ffile-prefix-map={root}={name}"
# Breakpad's configure computes its warning flags with -Werror (overriding any value given to
# it), and gcc 12 warns about its code: empty them on the make line.
MAKE_VARS = ("WARN_CXXFLAGS=",)


class RealCrashUnavailable(RuntimeError):
    """The Breakpad source, dump_syms or a C++ compiler is missing: tests skip with this."""


@dataclass(frozen=True)
class BreakpadClient:
    """A built client library: ``root`` is the copied ``deps/`` it was built in."""

    root: pathlib.Path

    @property
    def library(self):
        return self.root / LIBRARY

    @property
    def include_dirs(self):
        """``breakpad/src`` for ``client/linux/...``; ``root`` for ``third_party/lss/...``."""
        return (self.root / "breakpad" / "src", self.root)


@dataclass(frozen=True)
class RealCrash:
    """A real minidump and the symbol folder that makes its frames readable."""

    dump: pathlib.Path
    symbols_dir: pathlib.Path
    binary: pathlib.Path
    debug_file: str
    debug_id: str


def _require(path, what):
    if not path.exists():
        raise RealCrashUnavailable(f"{what} not found at {path} (run bin/fetch_stackwalker.sh)")


def _compiler():
    cxx = shutil.which(os.environ.get("CXX", "g++"))
    if cxx is None:
        raise RealCrashUnavailable("no C++ compiler (g++ or $CXX) on PATH")
    return cxx


def _fingerprint(deps_dir, flags):
    """Hash of every file under the tarball's deps/ plus our flags: a change means rebuild."""
    digest = hashlib.sha256(repr(flags).encode())
    for path in sorted(p for p in deps_dir.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(deps_dir)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _run(argv, cwd, log, env=None):
    """Run a build step with its output in ``log``; raise with the log's tail on failure."""
    with open(log, "ab") as fp:
        result = subprocess.run(argv, cwd=cwd, env=env, stdout=fp, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = pathlib.Path(log).read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(map(str, argv))} failed ({result.returncode}):\n{tail}")


def build_breakpad_client(cache_dir=DEFAULT_CLIENT_CACHE, deps_dir=DEPS_DIR, jobs=2):
    """Build (or reuse) Breakpad's Linux client library under ``cache_dir``.

    The tarball's ``deps/`` (``breakpad/`` plus ``third_party/lss``, which the client includes
    as ``third_party/lss/linux_syscall_support.h``) is copied into ``cache_dir/deps`` and built
    in place, so the npm extraction stays pristine and a re-fetch cannot break a built cache.
    A stamp holds the source fingerprint; a matching stamp and library skip the build. A file
    lock keeps concurrent test runs from building over each other.
    """
    if not sys.platform.startswith("linux"):
        raise RealCrashUnavailable(f"Breakpad's Linux client does not build on {sys.platform}")
    deps_dir = pathlib.Path(deps_dir)
    _require(deps_dir / "breakpad" / "configure", "Breakpad source (npm minidump tarball)")
    cxx = _compiler()
    cache_dir = pathlib.Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = cache_dir / "deps"
    compile_flags = "-g -O2 " + PREFIX_MAP.format(root=work, name=".")
    client = BreakpadClient(work)
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = cache_dir / "source.sha256"
        fingerprint = _fingerprint(deps_dir, (cxx, compile_flags, MAKE_VARS))
        if client.library.exists() and stamp.exists() and stamp.read_text() == fingerprint:
            return client
        stamp.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(deps_dir, work, symlinks=True)
        log = cache_dir / "build.log"
        log.unlink(missing_ok=True)
        env = dict(os.environ, CXX=cxx, CPPFLAGS=f"-I{work}", CFLAGS=compile_flags,
                   CXXFLAGS=compile_flags)
        source = work / "breakpad"
        _run(["./configure"], source, log, env)
        _run(["make", f"-j{jobs}", *MAKE_VARS, LIBRARY.removeprefix("breakpad/")], source, log, env)
        stamp.write_text(fingerprint)
    return client


def compile_crash_program(client, out_path, source=SOURCE):
    """Compile ``source`` (``-g -O0``, so every call is a real frame) against ``client``."""
    out_path = pathlib.Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    source = pathlib.Path(source).resolve()
    # Compiled from its own folder by file name, so the debug info says crash_program/<name>.
    argv = [
        _compiler(), "-g", "-O0", "-pthread",
        PREFIX_MAP.format(root=source.parent, name=source.parent.name),
        PREFIX_MAP.format(root=client.root, name="."),
        *(f"-I{path}" for path in client.include_dirs),
        "-o", str(out_path.resolve()), source.name, str(client.library),
    ]
    result = subprocess.run(argv, cwd=source.parent, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"compiling {source} failed:\n{result.stderr[-3000:]}")
    return out_path


def write_symbols(binary, symbols_dir):
    """Make ``binary``'s symbols with ``bin/make_symbols.sh`` (what users run); return
    ``(path, debug_file, debug_id)`` of the .sym it filed in Breakpad layout."""
    _require(DUMP_SYMS, "dump_syms")
    result = subprocess.run(
        [str(MAKE_SYMBOLS), str(binary), str(symbols_dir)],
        capture_output=True, text=True, check=True,
    )
    path = pathlib.Path(result.stdout.strip())
    return path, path.parent.parent.name, path.parent.name


def run_crash_program(binary, dump_path, timeout=60):
    """Run ``binary`` until Breakpad writes its dump, then move the dump to ``dump_path``.

    The environment is a fixed PATH only: a Linux minidump records the process environment,
    and a test's or a developer's environment has no place in a dump that may be shipped.
    """
    dump_path = pathlib.Path(dump_path)
    dump_dir = dump_path.parent / "dumps"
    dump_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [str(binary), str(dump_dir)],
        cwd=dump_path.parent,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    written = result.stdout.strip()
    if result.returncode != -signal.SIGSEGV or not written:
        raise RuntimeError(
            f"{binary} exited with {result.returncode}, expected SIGSEGV and a dump path; "
            f"stdout={result.stdout!r} stderr={result.stderr[-2000:]!r}"
        )
    os.replace(written, dump_path)
    dump_dir.rmdir()
    return dump_path


def make_real_crash(out_dir, cache_dir=DEFAULT_CLIENT_CACHE):
    """Build what is needed and crash once; return a :class:`RealCrash` under ``out_dir``."""
    out_dir = pathlib.Path(out_dir)
    client = build_breakpad_client(cache_dir)
    binary = compile_crash_program(client, out_dir / "build" / PROGRAM_NAME)
    symbols_dir = out_dir / "symbols"
    _path, debug_file, debug_id = write_symbols(binary, symbols_dir)
    dump = run_crash_program(binary, out_dir / "crash.dmp")
    return RealCrash(dump, symbols_dir, binary, debug_file, debug_id)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="folder for crash.dmp, symbols/ and build/")
    args = parser.parse_args(argv)
    try:
        crash = make_real_crash(args.out_dir)
    except RealCrashUnavailable as exc:
        print(f"real_crash: {exc}", file=sys.stderr)
        return 1
    print(f"dump: {crash.dump}")
    print(f"symbols: {crash.symbols_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
