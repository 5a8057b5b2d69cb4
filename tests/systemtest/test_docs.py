"""Every command the docs show is run here (or is a make target), as a reader would type it."""

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testlib.servers import REPO_ROOT, VENV_BIN

DOCS = sorted(Path(REPO_ROOT, "docs").glob("*.md"))
SAMPLE = Path(REPO_ROOT, "tests", "data", "sample-crash")
RUN_HERE = {
    "make run": "test_make_run_then_send_crash_report",
    "bin/send_crash_report.sh": "test_make_run_then_send_crash_report",
    "python -m testlib.mini_poster": "test_mini_poster_command",
    "bin/make_symbols.sh": "test_make_symbols_then_process_file",
    "python -m processor process-file": "test_make_symbols_then_process_file",
}


def documented_commands():
    commands = []
    for path in DOCS:
        for line in path.read_text().splitlines():
            if line.startswith("$ "):
                commands.append(line[2:].strip())
    return commands


def test_every_documented_command_is_run_by_a_test():
    commands = documented_commands()
    assert commands, "docs show no commands?"
    for command in commands:
        assert any(command.startswith(prefix) for prefix in RUN_HERE), (
            f"{command!r} is documented but no test runs it: add it to RUN_HERE and a test"
        )


def port_is_free(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def run(command, timeout=120, **kwargs):
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}")
    return subprocess.run(
        shlex.split(command), cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=timeout, **kwargs,
    )


@pytest.fixture
def sample():
    if not (SAMPLE / "crash.dmp").exists():
        pytest.skip(f"sample crash missing at {SAMPLE}")
    return SAMPLE


def wait_for_line(path, text, proc, timeout):
    """Wait until ``text`` appears in the log file ``path``; fail if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        printed = path.read_text()
        if text in printed:
            return printed
        if proc.poll() is not None:
            pytest.fail("make run exited early:\n" + printed[-3000:])
        time.sleep(0.2)
    pytest.fail(f"make run did not print {text!r} within {timeout}s:\n" + path.read_text()[-3000:])


def test_make_run_then_send_crash_report(sample, tmp_path):
    """The newcomer's path: `make run`, then `bin/send_crash_report.sh`, then an issue URL."""
    if not (port_is_free(8000) and port_is_free(8001)):
        pytest.skip("ports 8000/8001 are taken (is `make run` already running?)")
    env = dict(os.environ)
    for key in ("PROCESSOR_SENTRY_DSN", "ANTENNA_ENV", "CRASHSTORAGE_CLASS"):
        env.pop(key, None)
    if Path(REPO_ROOT, "my.env").exists():
        pytest.skip("a my.env would change what `make run` does")
    log = tmp_path / "make-run.log"
    with open(log, "w") as out:  # a file, not a pipe: the servers keep logging
        proc = subprocess.Popen(
            ["make", "run"], cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        printed = wait_for_line(log, "Stop with Ctrl-C", proc, timeout=600)
        assert "http://127.0.0.1:8000/submit" in printed
        assert re.search(r"http://127.0.0.1:8001 +user admin, password \S+", printed)

        result = run("bin/send_crash_report.sh", timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].startswith("200 CrashID=bp-")
        assert any(line.startswith("signature: ") for line in lines)
        assert any(re.match(r"issue: http://127.0.0.1:8001/issues/issue/\S+", line) for line in lines)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise


def test_mini_poster_command(sample, start_collector):
    server = start_collector()
    command = (
        f"{sys.executable} -m testlib.mini_poster --url {server.url}/submit "
        f"--dump {sample / 'crash.dmp'} --annotation ProductName=MyApp --gzip"
    )
    result = run(command)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"200 CrashID=bp-[0-9a-f-]{36}\n", result.stdout)


def test_make_symbols_then_process_file(tmp_path, sample):
    """Symbols for a real binary, then processing a real dump with its shipped symbols."""
    made = run(f"bin/make_symbols.sh {sys.executable} {tmp_path / 'symbols'}")
    assert made.returncode == 0, made.stderr
    sym = Path(made.stdout.strip())
    assert sym.is_file() and sym.read_text().startswith("MODULE Linux")
    assert sym.parent.parent.parent == tmp_path / "symbols"

    result = run(
        f"{sys.executable} -m processor process-file {sample / 'crash.dmp'} "
        f"--symbols {sample / 'symbols'}"
    )
    assert result.returncode == 0, result.stderr
    processed = json.loads(result.stdout)
    assert processed["success"] is True
    assert processed["threads"][processed["crashing_thread"]]["frames"][0]["function"]
