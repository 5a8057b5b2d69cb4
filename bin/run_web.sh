#!/usr/bin/env bash
# Start the collector under gunicorn with gevent workers (Dockerfile, make run, tests, bench).
#   GUNICORN_WORKERS (default 1), GUNICORN_WORKER_CONNECTIONS (default 1000),
#   GUNICORN_WORKER_CLASS (default gevent), GUNICORN_BIND (default 0.0.0.0:8000),
#   GUNICORN_TIMEOUT (default 60), GUNICORN_GRACEFUL_TIMEOUT (default 30; keep it above
#   SHUTDOWN_TIMEOUT), GUNICORN_ACCESS_LOG (default "-" = stdout; empty = off).
set -euo pipefail
cd "$(dirname "$0")/.."
GUNICORN="${GUNICORN:-gunicorn}"
if [ "$GUNICORN" = gunicorn ] && [ -x .venv/bin/gunicorn ]; then GUNICORN=.venv/bin/gunicorn; fi
args=(
    --workers "${GUNICORN_WORKERS:-1}"
    --worker-connections "${GUNICORN_WORKER_CONNECTIONS:-1000}"
    --worker-class "${GUNICORN_WORKER_CLASS:-gevent}"
    --bind "${GUNICORN_BIND:-0.0.0.0:8000}"
    --timeout "${GUNICORN_TIMEOUT:-60}"
    --graceful-timeout "${GUNICORN_GRACEFUL_TIMEOUT:-30}"
    # gunicorn's control socket has one default path per user: several collectors on one
    # box (tests, blue/green) would take it from each other. Nothing here uses it.
    --no-control-socket
)
ACCESS_LOG="${GUNICORN_ACCESS_LOG--}"
if [ -n "$ACCESS_LOG" ]; then args+=(--access-logfile "$ACCESS_LOG"); fi
exec "$GUNICORN" "${args[@]}" antenna.app:application
