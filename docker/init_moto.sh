#!/usr/bin/env bash
# Start moto's server and create the bucket and queue that docker/compose.env names.
set -euo pipefail
moto_server -H 0.0.0.0 -p 5000 &
until python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/')" 2>/dev/null; do sleep 0.5; done
python - <<'PY'
import boto3
kw = dict(endpoint_url="http://127.0.0.1:5000", region_name="us-east-1",
          aws_access_key_id="testing", aws_secret_access_key="testing")
boto3.client("s3", **kw).create_bucket(Bucket="crashes")
boto3.client("sqs", **kw).create_queue(QueueName="crashes")
PY
wait
