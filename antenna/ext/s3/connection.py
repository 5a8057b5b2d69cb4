"""One S3 bucket through boto3: the few object calls crash storage needs, and its checks.

Path-style addressing (``<endpoint>/<bucket>/<key>``) is used because it works with
any endpoint URL (moto, MinIO, a proxy) and with dotted bucket names, which break
TLS certificate matching under virtual-host addressing.
"""

from botocore.exceptions import BotoCoreError, ClientError

from antenna.ext.aws import describe_error, error_code

TEST_KEY = "test/testwrite.txt"
TEST_DATA = b"test"

MISSING_OBJECT_CODES = {"NoSuchKey", "404"}

# head_bucket answers with a bare HTTP status; say what it means for a bucket.
HEAD_BUCKET_HINTS = {
    "404": "the bucket does not exist",
    "403": "access denied, check the credentials and the bucket policy",
}


class BucketUnavailable(Exception):
    """The bucket cannot be reached or written; the message is one line."""


class S3Bucket:
    """Reads and writes objects of one bucket with a shared, thread/greenlet-safe client."""

    def __init__(self, client, bucket_name, where):
        self.client = client
        self.name = bucket_name
        self.where = where  # endpoint description, for messages

    def put(self, key, data):
        self.client.put_object(Bucket=self.name, Key=key, Body=data)

    def get(self, key):
        """Return the object's bytes; ``KeyError`` when it does not exist."""
        try:
            resp = self.client.get_object(Bucket=self.name, Key=key)
        except ClientError as exc:
            if error_code(exc) in MISSING_OBJECT_CODES:
                raise KeyError(key) from exc
            raise
        return resp["Body"].read()

    def exists(self, key):
        try:
            self.client.head_object(Bucket=self.name, Key=key)
        except ClientError as exc:
            if error_code(exc) in MISSING_OBJECT_CODES:
                return False
            raise
        return True

    def problem(self, action, exc):
        reason = describe_error(exc)
        hint = HEAD_BUCKET_HINTS.get(error_code(exc)) if action == "head_bucket" else None
        if hint:
            reason = f"{reason} ({hint})"
        return f"S3 bucket {self.name!r} at {self.where}: {action} failed: {reason}"

    def verify(self):
        """Check that the bucket exists and takes writes; raise ``BucketUnavailable`` if not.

        A write is the only proof that the credentials may store crashes, and the
        collector must not answer 200 for crashes it can never save.
        """
        for action, call in (
            ("head_bucket", lambda: self.client.head_bucket(Bucket=self.name)),
            (f"test write of {TEST_KEY}", lambda: self.put(TEST_KEY, TEST_DATA)),
        ):
            try:
                call()
            except (BotoCoreError, ClientError) as exc:
                raise BucketUnavailable(self.problem(action, exc)) from exc

    def check_health(self):
        """A list of problems: empty when the bucket answers ``head_bucket``."""
        try:
            self.client.head_bucket(Bucket=self.name)
        except (BotoCoreError, ClientError) as exc:
            return [self.problem("head_bucket", exc)]
        return []
