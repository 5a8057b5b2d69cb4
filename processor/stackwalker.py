"""Run Breakpad's ``minidump_stackwalk`` on one dump, inside a gevent process.

The processor shares its gevent hub with other work (the embedded collector,
other crashes), so the stackwalker runs through :mod:`gevent.subprocess`: the
greenlet waits on the child's pipes and exit through the hub and everything
else keeps running. This also holds when the process is not monkey-patched.

Only the plain (human-readable) output is produced, once: it has what the
processed crash needs (absolute addresses through the frames' registers, frame
trust through "Found by:" lines); ``-m`` would need a second, equally costly
run. See :mod:`processor.stackwalk_output` for the parsing and why.

stderr goes to /dev/null by default: Breakpad logs every symbol lookup and
scan step unbuffered, which costs up to twice the run time on big dumps. With
``stackwalker_stderr`` on, its last lines are kept for diagnosis.

The child gets its own process group, so a timeout kills it and anything it
started (a wrapper script, say) and no pipe stays open behind it.
"""

import collections
import functools
import json
import os
import shlex
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from everett.manager import Option, parse_bool
from gevent import subprocess

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STACKWALKER = (
    REPO_ROOT
    / ".cache"
    / "minidump"
    / "package"
    / "bin"
    / "linux-x64"
    / "minidump_stackwalk"
)
# npm minidump releases → the Breakpad commit bundled as deps/breakpad. The
# package records no commit, so known releases are listed here.
BREAKPAD_COMMITS = {"minidump@0.26.0": "8988364b"}
STDERR_TAIL_LINES = 20


@dataclass
class StackwalkResult:
    """One stackwalker run: what the processed crash records, plus the output."""

    command: str
    returncode: int | None
    status: str
    seconds: float
    stderr_tail: str
    version: str
    output: str = ""

    @property
    def ok(self):
        return self.status == "ok"

    def as_dict(self):
        """The processed crash's ``stackwalker`` field (output excluded)."""
        return {
            "command": self.command,
            "returncode": self.returncode,
            "status": self.status,
            "stderr_tail": self.stderr_tail,
            "version": self.version,
            "seconds": self.seconds,
        }


def _status(returncode):
    if returncode == 0:
        return "ok"
    if returncode > 0:
        return f"error: exit {returncode}"
    try:
        return f"error: killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"error: killed by signal {-returncode}"


def _kill(process):
    """SIGKILL the child's whole process group (it leads its own session)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


def _tail(data):
    lines = data.decode("utf-8", "replace").splitlines()
    return "\n".join(collections.deque(lines, maxlen=STDERR_TAIL_LINES))


class Stackwalker:
    """Runs ``minidump_stackwalk <dump> [symbol dirs...]`` with a timeout."""

    class Config:
        stackwalker = Option(
            default=str(DEFAULT_STACKWALKER),
            doc="Path to Breakpad's minidump_stackwalk (bin/fetch_stackwalker.sh puts it at the default).",
        )
        stackwalker_timeout = Option(
            default="120",
            parser=float,
            doc="Seconds a stackwalk may take before it is killed and the crash marked 'timeout'.",
        )
        stackwalker_stderr = Option(
            default="false",
            parser=parse_bool,
            doc=(
                "Keep the stackwalker's stderr (last lines in stackwalker.stderr_tail). Off by default: "
                "its unbuffered logging can double the run time on big dumps."
            ),
        )

    def __init__(self, config):
        self.config = config.with_options(self)

    @functools.cached_property
    def version(self):
        """``minidump@0.26.0 (breakpad 8988364b)``, from the npm package.json beside the binary.

        The binary lives in ``<package>/bin/<platform>/``; anything else is "unknown".
        """
        try:
            package_json = (
                Path(self.config("stackwalker")).resolve().parents[2] / "package.json"
            )
            package = json.loads(package_json.read_text())
            name = f"{package['name']}@{package['version']}"
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return "unknown"
        commit = BREAKPAD_COMMITS.get(name)
        return f"{name} (breakpad {commit})" if commit else name

    def walk(self, dump_path, symbol_dirs=()):
        """Stackwalk ``dump_path`` with the given symbol folders; never raises for a bad dump.

        Returns a :class:`StackwalkResult`; ``status`` is "ok", "timeout",
        "not found" (no stackwalker binary), "error: exit N",
        "error: killed by SIGxxx" or "error: <OS error>". ``output`` is the
        plain stdout ("" after a timeout: Breakpad prints only once it is done).
        """
        command = [
            self.config("stackwalker"),
            os.fspath(dump_path),
            *map(os.fspath, symbol_dirs),
        ]
        keep_stderr = self.config("stackwalker_stderr")
        start = time.monotonic()
        returncode, stdout, stderr = None, b"", b""
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE if keep_stderr else subprocess.DEVNULL,
                start_new_session=True,
            )
        except FileNotFoundError:
            status = "not found"
        except OSError as exc:
            status = f"error: {exc.strerror or exc}"
        else:
            try:
                stdout, stderr = process.communicate(
                    timeout=self.config("stackwalker_timeout")
                )
                returncode = process.returncode
                status = _status(returncode)
            except subprocess.TimeoutExpired:
                _kill(process)
                # Reap it; what it printed so far is incomplete, keep only stderr.
                _, stderr = process.communicate()
                returncode = process.returncode
                status = "timeout"
            finally:
                # Also reached when this greenlet is killed: leave no child behind.
                if process.poll() is None:
                    _kill(process)
                    process.wait()
        return StackwalkResult(
            command=shlex.join(command),
            returncode=returncode,
            status=status,
            seconds=round(time.monotonic() - start, 3),
            stderr_tail=_tail(stderr or b""),
            version=self.version,
            output=stdout.decode("utf-8", "replace"),
        )
