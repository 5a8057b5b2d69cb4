"""``make run``: the whole pipeline on 127.0.0.1 with embedded defaults.

Starts a local Bugsink (bootstrapped on first run, reused later) unless a Sentry DSN is
configured, then the collector under gunicorn+gevent with the in-process processor
sending to that DSN.  Settings come from the environment, then ``my.env``, then
``dev.env``; Ctrl-C stops everything this started.
"""

import os
import signal
import socket
import subprocess
import sys

from antenna.libconfig import build_config_manager
from testlib.bugsink import Bugsink, BugsinkError
from testlib.servers import REPO_ROOT, wait_for_http

DATA_DIR = os.path.join(REPO_ROOT, "data")
BUGSINK_DIR = os.path.join(DATA_DIR, "bugsink")
LOCAL_SYMBOLS = os.path.join(DATA_DIR, "symbols")
SAMPLE_SYMBOLS = os.path.join(REPO_ROOT, "tests", "data", "sample-crash", "symbols")
COLLECTOR_BIND = "127.0.0.1:8000"
BUGSINK_PORT = 8001


def read_env_file(path):
    """KEY=VALUE lines of an env file (as everett reads them), or {} if absent."""
    if not os.path.exists(path):
        return {}
    from everett.manager import parse_env_file

    with open(path) as fp:
        return parse_env_file(fp.read().splitlines())


def collector_environment():
    """The environment for the collector: process env > my.env > onebox defaults > dev.env."""
    env = dict(os.environ)
    for key, value in read_env_file(os.path.join(REPO_ROOT, "my.env")).items():
        env.setdefault(key, value)
    env.setdefault("ANTENNA_ENV", os.path.join(REPO_ROOT, "dev.env"))
    env.setdefault("CRASHPUBLISH_CLASS", "processor.inprocess.InProcessCrashPublish")
    env.setdefault("PROCESSOR_SYMBOLS_PATHS", f"{LOCAL_SYMBOLS},{SAMPLE_SYMBOLS}")
    env.setdefault("GUNICORN_BIND", COLLECTOR_BIND)
    env.setdefault("GUNICORN_WORKERS", "1")
    env["PYTHONPATH"] = REPO_ROOT
    return env


def configured_dsn(env):
    """A Sentry DSN from the environment, my.env or the ANTENNA_ENV file, if any."""
    return build_config_manager(env)("PROCESSOR_SENTRY_DSN", default="", raise_error=False)


def port_taken(bind):
    host, _, port = bind.rpartition(":")
    with socket.socket() as sock:
        return sock.connect_ex((host or "127.0.0.1", int(port))) == 0


def stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main():
    # A shell without job control starts background jobs with SIGINT ignored, and Python
    # keeps it that way: take Ctrl-C and SIGTERM explicitly so both stop everything.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    os.makedirs(LOCAL_SYMBOLS, exist_ok=True)
    env = collector_environment()
    if port_taken(env["GUNICORN_BIND"]):
        print(f"make run: {env['GUNICORN_BIND']} is already in use (another `make run`?)",
              file=sys.stderr)
        return 1
    bugsink = None
    if configured_dsn(env):
        print("Sending crashes to the configured PROCESSOR_SENTRY_DSN (no local Bugsink).")
    elif port_taken(f"127.0.0.1:{BUGSINK_PORT}"):
        print(f"make run: 127.0.0.1:{BUGSINK_PORT} (Bugsink) is already in use", file=sys.stderr)
        return 1
    else:
        print("Starting the local Bugsink (the first run installs it: about a minute) ...", flush=True)
        try:
            bugsink = Bugsink(BUGSINK_DIR, BUGSINK_PORT).start()
        except BugsinkError as exc:
            print(f"make run: could not start Bugsink: {exc}", file=sys.stderr)
            return 1
        env["PROCESSOR_SENTRY_DSN"] = bugsink.dsn
    collector = subprocess.Popen(
        [os.path.join(REPO_ROOT, "bin", "run_web.sh")], env=env, cwd=REPO_ROOT,
        start_new_session=True,
    )
    try:
        wait_for_http(f"http://{env['GUNICORN_BIND']}/__lbheartbeat__", timeout=60, proc=collector)
        print()
        print(f"  Send crashes to   http://{env['GUNICORN_BIND']}/submit")
        print("  Try it:           bin/send_crash_report.sh")
        if bugsink:
            print(f"  Look at them in   {bugsink.ui_url}   user {bugsink.admin_user}, "
                  f"password {bugsink.admin_password}")
        print("  Raw and processed crashes: ./data/crashes   symbols: ./data/symbols")
        print("  Stop with Ctrl-C.\n", flush=True)
        collector.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if collector.poll() is None:
            os.killpg(collector.pid, signal.SIGTERM)
            collector.wait(40)
        if bugsink:
            bugsink.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
