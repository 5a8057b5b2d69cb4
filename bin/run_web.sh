#!/usr/bin/env bash
# Start the collector under gunicorn with gevent workers (used by the Dockerfile and make run).
#   GUNICORN_WORKERS (default 1), GUNICORN_WORKER_CONNECTIONS (default 1000),
#   GUNICORN_WORKER_CLASS (default gevent), GUNICORN_BIND (default 0.0.0.0:8000),
#   GUNICORN_TIMEOUT (default 60), GUNICORN_GRACEFUL_TIMEOUT (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
GUNICORN="${GUNICORN:-gunicorn}"
if [ -x .venv/bin/gunicorn ] && [ "$GUNICORN" = gunicorn ]; then GUNICORN=.venv/bin/gunicorn; fi
exec "$GUNICORN" \
    --workers "${GUNICORN_WORKERS:-1}" \
    --worker-connections "${GUNICORN_WORKER_CONNECTIONS:-1000}" \
    --worker-class "${GUNICORN_WORKER_CLASS:-gevent}" \
    --bind "${GUNICORN_BIND:-0.0.0.0:8000}" \
    --timeout "${GUNICORN_TIMEOUT:-60}" \
    --graceful-timeout "${GUNICORN_GRACEFUL_TIMEOUT:-30}" \
    --access-logfile - \
    antenna.app:application
