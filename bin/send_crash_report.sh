#!/usr/bin/env bash
# Send a crash report to the collector and print the response.
#   bin/send_crash_report.sh [DUMP] [--url URL] [--gzip] [--annotation K=V ...]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
args=()
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then args+=(--dump "$1"); shift; fi
exec "$PY" -m testlib.mini_poster \
    --annotation ProductName=ExampleApp --annotation Version=1.0.0 \
    --annotation ReleaseChannel=nightly "${args[@]}" "$@"
