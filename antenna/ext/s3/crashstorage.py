"""S3 crash storage: the DESIGN.md key layout as objects of one bucket (AWS or compatible)."""

from everett.manager import Option

from antenna.ext.aws import AWSComponent
from antenna.ext.crashstorage_base import KeyValueCrashStorage
from antenna.ext.s3.connection import S3Bucket


class S3CrashStorage(AWSComponent, KeyValueCrashStorage):
    """The shared store of a multi-node deployment (collectors and processors on many boxes).

    The bucket is checked when the collector starts (it exists and takes a test
    write), so a wrong name, endpoint or credentials stop the process with one line
    instead of crashes piling up in the spool.
    """

    # boto3 does socket I/O, which gevent's monkey-patching makes cooperative.
    blocking_io = False

    class Config:
        bucket_name = Option(
            doc="Bucket holding raw crashes, dumps and processed crashes (required; dotted names work).",
        )

    def __init__(self, config):
        self.config = config.with_options(self)
        self.bucket = S3Bucket(
            # Path-style works with endpoint URLs and dotted bucket names; checksums only
            # when required keeps S3-compatible stores (older MinIO, GCS interop) working.
            self.build_client(
                "s3",
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
            self.config("bucket_name"),
            self.endpoint_description(),
        )
        self.bucket.verify()

    def put(self, key, data):
        self.bucket.put(key, data)

    def get(self, key):
        return self.bucket.get(key)

    def exists(self, key):
        return self.bucket.exists(key)

    def check_health(self):
        return self.bucket.check_health()
