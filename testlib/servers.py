"""Start real servers on 127.0.0.1 for system tests and benchmarks, and stop them."""

import os
import signal
import socket
import subprocess
import sys
import time

import requests

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.dirname(sys.executable)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url, timeout=30, proc=None):
    """Poll ``url`` until it answers (any status); fail early if ``proc`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


class ServerProcess:
    """A child process serving HTTP on 127.0.0.1:<port>, with its log in a file."""

    def __init__(self, argv, port, env=None, log_path=None, ready_path="/"):
        self.argv = argv
        self.port = port
        self.env = env
        self.log_path = log_path
        self.ready_path = ready_path
        self.proc = None
        self.log = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=30):
        self.log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=REPO_ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_http(self.url + self.ready_path, timeout=timeout, proc=self.proc)
        return self

    def kill(self, sig=signal.SIGKILL):
        """Signal the whole process group (gunicorn master and workers)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.proc.wait(5)
        if self.log not in (None, subprocess.DEVNULL):
            self.log.close()

    def returncode(self):
        return self.proc.poll()


def collector_env(tmp_dir, **overrides):
    """Environment for a collector whose storage and spool live under ``tmp_dir``."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "CRASHSTORAGE_FS_ROOT": os.path.join(tmp_dir, "crashes"),
        "CRASHMOVER_SPOOL_DIR": os.path.join(tmp_dir, "spool"),
        "CRASHPUBLISH_QUEUE_DIR": os.path.join(tmp_dir, "process-queue"),
        "LOGGING_FORMAT": "json",
        "PYTHONPATH": REPO_ROOT,
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def gunicorn_collector(tmp_dir, port=None, workers=1, env=None, log_name="gunicorn.log"):
    """The collector as operators start it: ``bin/run_web.sh`` (gunicorn + gevent) on 127.0.0.1."""
    port = port or free_port()
    env = dict(env or collector_env(tmp_dir))
    env.update(
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS=str(workers),
        GUNICORN_GRACEFUL_TIMEOUT="25",
        GUNICORN=os.path.join(VENV_BIN, "gunicorn"),
    )
    return ServerProcess(
        [os.path.join(REPO_ROOT, "bin", "run_web.sh")],
        port,
        env=env,
        log_path=os.path.join(tmp_dir, log_name),
        ready_path="/__lbheartbeat__",
    )
