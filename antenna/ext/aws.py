"""What the S3 and SQS backends share: connection options, the boto3 client, error wording.

Both backends run inside crashmover coroutines that already retry forever with
back-off, so botocore's own retries are kept short: one quick retry covers a stale
keep-alive connection, anything longer is the crashmover's job.  Under gunicorn's
gevent worker the process is monkey-patched, so boto3's socket I/O yields to other
coroutines instead of blocking the worker.
"""

import boto3
from botocore.config import Config as BotocoreConfig
from botocore.exceptions import BotoCoreError, ClientError
from everett.manager import Option

CONNECT_TIMEOUT = 5
READ_TIMEOUT = 30  # above SQS's longest long-poll (20 s), which the processor worker uses
TOTAL_MAX_ATTEMPTS = 2
# Above the default number of crashmovers, which all talk to S3 at once.
MAX_POOL_CONNECTIONS = 64


class AWSComponent:
    """Base of components that talk to an AWS service (or a compatible one) through boto3."""

    class Config:
        region = Option(default="us-east-1", doc="AWS region of the service.")
        endpoint_url = Option(
            default="",
            doc=(
                "Endpoint URL of an AWS-compatible service (moto, MinIO, ...); "
                "empty for AWS itself."
            ),
        )
        access_key = Option(
            default="",
            doc="AWS access key id; empty to use boto3's default credential chain (role, env, files).",
        )
        secret_access_key = Option(
            default="", doc="AWS secret access key, used together with the access key."
        )

    def build_client(self, service_name, **botocore_options):
        """A boto3 client for ``service_name`` with bounded timeouts and retries."""
        session = boto3.session.Session(
            aws_access_key_id=self.config("access_key") or None,
            aws_secret_access_key=self.config("secret_access_key") or None,
            region_name=self.config("region"),
        )
        client_config = BotocoreConfig(
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            retries={"total_max_attempts": TOTAL_MAX_ATTEMPTS, "mode": "standard"},
            max_pool_connections=MAX_POOL_CONNECTIONS,
            **botocore_options,
        )
        return session.client(
            service_name,
            endpoint_url=self.config("endpoint_url") or None,
            config=client_config,
        )

    def endpoint_description(self):
        """Where requests go, for messages: the endpoint URL, or AWS and the region."""
        return self.config("endpoint_url") or f"AWS {self.config('region')}"


def error_code(exc):
    """The service's error code (``NoSuchKey``, ``404``, ...) or None for non-service errors."""
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code")
    return None


def describe_error(exc):
    """One line saying why a call failed, for start-up errors and health checks."""
    if isinstance(exc, ClientError):
        code = error_code(exc) or "unknown error"
        message = exc.response.get("Error", {}).get("Message", "")
        if code.isdigit():  # HEAD answers carry no error body, only the HTTP status
            code = f"HTTP {code}"
        text = f"{code}: {message}" if message else code
    elif isinstance(exc, BotoCoreError):
        text = str(exc)
    else:
        text = repr(exc)
    return " ".join(text.split())
