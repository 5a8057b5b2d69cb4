"""A real Bugsink (Sentry-compatible server, SQLite) for system tests and ``make run``.

Bugsink runs from its own virtualenv (``.cache/bugsink-venv-<version>``, made on demand with
a pinned version) so its pins (Django, gunicorn, sentry-sdk) never meet ours (DESIGN.md).
Bootstrap is headless: ``bugsink-create-conf`` (singleserver template, SQLite under the data
dir), ``migrate``, ``createsuperuser --noinput``, ``create_auth_token``, then the REST API
(``/api/canonical/0/``) creates a team and a project whose DSN we use. The result is kept in
``<data_dir>/bootstrap.json`` so later runs reuse the data dir and only start the server.

Per-run settings (the port is in BASE_URL, hence in the DSN) live in a small settings module
written on every start on top of the generated conf: plain http on 127.0.0.1, tasks run
eagerly (no separate snappea process), and event validation ``warn`` because Bugsink's schema
lacks the frame ``trust`` field that Sentry accepts.

Usage::

    python -m testlib.bugsink [data_dir] [port]   # runs until Ctrl-C, prints DSN and UI URL
"""

import json
import os
import pathlib
import secrets
import socket
import subprocess
import sys
import time

import requests

BUGSINK_VERSION = "2.6.2"
REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_VENV = REPO_ROOT / ".cache" / f"bugsink-venv-{BUGSINK_VERSION}"
SETTINGS_MODULE = "bugsink_local"
API = "/api/canonical/0"


class BugsinkError(RuntimeError):
    """Bugsink could not be installed, bootstrapped or started."""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_venv(venv=DEFAULT_VENV, version=BUGSINK_VERSION, timeout=600):
    """Create the Bugsink virtualenv if missing; return its bin dir. Raises BugsinkError
    (e.g. PyPI unreachable) so callers can skip with the reason."""
    venv = pathlib.Path(venv)
    marker = venv / f".installed-{version}"
    if not marker.exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True,
                           capture_output=True, timeout=timeout)
            subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet",
                            "--disable-pip-version-check", f"bugsink=={version}"],
                           check=True, capture_output=True, timeout=timeout)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            output = getattr(exc, "stderr", b"") or b""
            raise BugsinkError(f"cannot install bugsink=={version} into {venv}: "
                               f"{output.decode(errors='replace')[-500:]}") from exc
        marker.touch()
    return venv / "bin"


class Bugsink:
    """One Bugsink server on 127.0.0.1:<port> with its data (SQLite) in ``data_dir``."""

    admin_user = "admin"

    def __init__(self, data_dir, port=None, venv=DEFAULT_VENV):
        self.data_dir = pathlib.Path(data_dir).resolve()
        self.port = port or free_port()
        self.venv = pathlib.Path(venv)
        self.ui_url = f"http://127.0.0.1:{self.port}"
        self._process = None
        self._state = {}

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, timeout=60):
        """Install (first time), bootstrap (first time for this data dir), serve, wait."""
        self.bin = ensure_venv(self.venv)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_local_settings()
        state_file = self.data_dir / "bootstrap.json"
        if state_file.exists():
            self._state = json.loads(state_file.read_text())
            self._manage("migrate", "--noinput", "-v0")  # cheap no-op unless bugsink was upgraded
        else:
            self._bootstrap_database()
        self._serve(timeout)
        if not state_file.exists():
            self._bootstrap_project()
            state_file.write_text(json.dumps(self._state, indent=2))
        return self

    @classmethod
    def attach(cls, data_dir, port):
        """A handle on a Bugsink that another process started (e.g. ``make run``), or None."""
        state_file = pathlib.Path(data_dir) / "bootstrap.json"
        if not state_file.exists():
            return None
        server = cls(data_dir, port)
        server._state = json.loads(state_file.read_text())
        return server

    def issue_url(self, event_id):
        """The UI page of the issue an event was grouped into."""
        event = self.event(event_id)
        return f"{self.ui_url}/issues/issue/{event['issue']}/event/{event['id']}/"

    def wait(self):
        """Block until the server exits (for ``python -m testlib.bugsink``)."""
        self._process.wait()

    def stop(self):
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # -- what tests use -----------------------------------------------------------------

    @property
    def admin_password(self):
        """From ``BUGSINK_ADMIN_PASSWORD`` at bootstrap, else generated; kept in the data dir."""
        return self._state["admin_password"]

    @property
    def project_id(self):
        return self._state["project_id"]

    @property
    def dsn(self):
        """The project DSN for this run's port (Bugsink builds DSNs from BASE_URL)."""
        return f"http://{self._state['sentry_key']}@127.0.0.1:{self.port}/{self.project_id}"

    def api(self, path, **params):
        response = requests.get(f"{self.ui_url}{API}/{path}", params=params, timeout=10,
                                headers={"Authorization": f"Bearer {self._state['token']}"})
        response.raise_for_status()
        return response.json()

    def event(self, event_id, project=None):
        """One stored event with its full ``data`` (looked up by the SDK event id)."""
        return self.api("events/lookup/", project=project or self.project_id, event_id=event_id)

    def events(self, project=None):
        """Every stored event of a project, full payloads, newest first per issue."""
        project = project or self.project_id
        events = []
        for issue in self._paged("issues/", project=project):
            for listed in self._paged("events/", issue=issue["id"]):
                events.append(self.api(f"events/{listed['id']}/"))
        return events

    # -- internals ----------------------------------------------------------------------

    def _paged(self, path, **params):
        page = self.api(path, **params)
        while True:
            yield from page["results"]
            if not page.get("next"):
                return
            response = requests.get(page["next"], timeout=10,
                                    headers={"Authorization": f"Bearer {self._state['token']}"})
            response.raise_for_status()
            page = response.json()

    def _env(self, **extra):
        env = dict(os.environ, DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
                   PYTHONPATH=str(self.data_dir), **extra)
        env.pop("VIRTUAL_ENV", None)
        return env

    def _manage(self, *args, **env):
        result = subprocess.run([str(self.bin / "bugsink-manage"), *args], cwd=self.data_dir,
                                env=self._env(**env), capture_output=True, text=True, timeout=300,
                                check=False)
        if result.returncode != 0:
            raise BugsinkError(f"bugsink-manage {args[0]} failed: {result.stderr[-1000:]}")
        return result.stdout

    def _write_local_settings(self):
        conf = self.data_dir / "bugsink_conf.py"
        if not conf.exists():
            subprocess.run([str(self.bin / "bugsink-create-conf"), "--template", "singleserver",
                            "--host", "127.0.0.1", "--base-dir", str(self.data_dir),
                            "--output-file", str(conf)], check=True, capture_output=True)
        (self.data_dir / f"{SETTINGS_MODULE}.py").write_text(
            "# Written by testlib/bugsink.py on every start; see its docstring.\n"
            "from bugsink_conf import *  # noqa\n"
            f'BUGSINK["BASE_URL"] = "{self.ui_url}"\n'
            'BUGSINK["VALIDATE_ON_DIGEST"] = "warn"\n'
            'ALLOWED_HOSTS = ["127.0.0.1", "localhost"]\n'
            "SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = False\n"
            "USE_X_REAL_IP = False\n"
            'SNAPPEA["TASK_ALWAYS_EAGER"] = True\n'
        )

    def _bootstrap_database(self):
        self._state["admin_password"] = (os.environ.get("BUGSINK_ADMIN_PASSWORD")
                                         or secrets.token_urlsafe(12))
        self._manage("migrate", "--noinput", "-v0")
        self._manage("migrate", "snappea", "--database=snappea", "--noinput", "-v0")
        self._manage("createsuperuser", "--noinput", DJANGO_SUPERUSER_USERNAME=self.admin_user,
                     DJANGO_SUPERUSER_EMAIL="admin@example.invalid",
                     DJANGO_SUPERUSER_PASSWORD=self.admin_password)
        self._state["token"] = self._manage("create_auth_token").strip().splitlines()[-1]

    def _bootstrap_project(self):
        headers = {"Authorization": f"Bearer {self._state['token']}"}
        team = requests.post(f"{self.ui_url}{API}/teams/", json={"name": "crashes"},
                             headers=headers, timeout=10)
        team.raise_for_status()
        project = requests.post(f"{self.ui_url}{API}/projects/", headers=headers, timeout=10,
                                json={"name": "crashes", "team": team.json()["id"]})
        project.raise_for_status()
        project_id = project.json()["id"]
        detail = self.api(f"projects/{project_id}/")
        self._state["project_id"] = int(project_id)
        # The DSN embeds this run's port; keep only the key and rebuild it per run.
        self._state["sentry_key"] = detail["dsn"].split("//", 1)[1].split("@", 1)[0]

    def _serve(self, timeout):
        with open(self.data_dir / "server.log", "ab") as log:  # the child keeps its own fd
            self._process = subprocess.Popen(
                [str(self.bin / "gunicorn"), "--bind", f"127.0.0.1:{self.port}", "--workers", "1",
                 "--access-logfile", "-", "bugsink.wsgi"],
                cwd=self.data_dir, env=self._env(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BugsinkError(f"bugsink exited with {self._process.returncode}; "
                                   f"see {self.data_dir / 'server.log'}")
            try:
                if requests.get(f"{self.ui_url}/health/ready", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise BugsinkError(f"bugsink not ready on {self.ui_url} after {timeout}s")


def main(argv):
    data_dir = argv[1] if len(argv) > 1 else REPO_ROOT / ".cache" / "bugsink-data"
    port = int(argv[2]) if len(argv) > 2 else 8001
    server = Bugsink(data_dir, port).start()
    print(f"Bugsink UI  {server.ui_url}  (user {server.admin_user}, "
          f"password in {server.data_dir / 'bootstrap.json'})", flush=True)
    # A throwaway local project key: printed so `make run` can hand it to the processor.
    print(f"PROCESSOR_SENTRY_DSN={server.dsn}", flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main(sys.argv)
