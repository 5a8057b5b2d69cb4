#!/usr/bin/env bash
# Send a crash to the local pipeline (`make run`) and print its CrashID and issue URL.
#   bin/send_crash_report.sh [DUMP] [--symbols DIR] [--gzip] [--annotation K=V ...] [--url URL]
# Without DUMP it sends the sample crash shipped in tests/data/sample-crash/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
exec "$PY" -m testlib.send_crash "$@"
