#!/usr/bin/env bash
# `make run`: the collector on 127.0.0.1:8000 with embedded defaults (dev.env):
# filesystem storage under ./data, logging metrics, no other service needed.
# Settings in the environment or in ./my.env override dev.env.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f my.env ]; then set -a; . ./my.env; set +a; fi
export ANTENNA_ENV="${ANTENNA_ENV:-dev.env}"
export GUNICORN_BIND="${GUNICORN_BIND:-127.0.0.1:8000}"
mkdir -p data
echo "Collector: http://${GUNICORN_BIND}/submit   (send a crash: bin/send_crash_report.sh)"
echo "Crashes are stored under ./data/crashes. Stop with Ctrl-C."
exec bin/run_web.sh
