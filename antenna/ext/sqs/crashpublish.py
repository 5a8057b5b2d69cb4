"""SQS crash publishing: one message per saved ACCEPTed crash, its body the crash id.

This is the scale-out queue: processor workers on any machine receive the ids and
load the crashes from the shared store.  Delivery is at least once (the crashmover
retries a publish whose answer was lost), so consumers must tolerate duplicates.
"""

from botocore.exceptions import BotoCoreError, ClientError
from everett import ConfigurationError
from everett.manager import Option

from antenna.ext.aws import AWSComponent, describe_error


class QueueUnavailable(Exception):
    """The queue cannot be found or reached; the message is one line."""


class SQSCrashPublish(AWSComponent):
    """Sends crash ids to one SQS queue, named by URL or by name."""

    class Config:
        queue_url = Option(
            default="",
            doc="URL of the queue; takes precedence over ``queue_name``.",
        )
        queue_name = Option(
            default="",
            doc="Name of the queue, looked up at start-up when no ``queue_url`` is given.",
        )

    def __init__(self, config):
        self.config = config.with_options(self)
        self.client = self.build_client("sqs")
        self.queue_url = self.config("queue_url")
        self.queue_name = self.config("queue_name")
        if not (self.queue_url or self.queue_name):
            raise ConfigurationError("set CRASHPUBLISH_QUEUE_URL or CRASHPUBLISH_QUEUE_NAME")
        self.verify()

    def describe(self):
        return f"SQS queue {self.queue_url or self.queue_name!r} at {self.endpoint_description()}"

    def verify(self):
        """Resolve the queue URL and check that the queue exists, or raise one line.

        Publishing to a missing queue would keep every ACCEPTed crash retrying in
        the spool, so the collector refuses to start instead.
        """
        try:
            if not self.queue_url:
                self.queue_url = self.client.get_queue_url(QueueName=self.queue_name)["QueueUrl"]
            self.client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        except (BotoCoreError, ClientError) as exc:
            raise QueueUnavailable(f"{self.describe()}: {describe_error(exc)}") from exc

    def publish(self, crash_id):
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=crash_id)

    def check_health(self):
        try:
            self.client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        except (BotoCoreError, ClientError) as exc:
            return [f"{self.describe()}: {describe_error(exc)}"]
        return []
