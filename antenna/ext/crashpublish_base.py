"""Crash publishing: tells the processor that an ACCEPTed crash is saved."""

from collections import deque


class NoOpCrashPublish:
    """Publishes nowhere; remembers the last ids so tests can look."""

    class Config:
        pass

    def __init__(self, config):
        self.config = config.with_options(self)
        self.published = deque(maxlen=100)

    def publish(self, crash_id):
        self.published.append(crash_id)

    def check_health(self):
        return []
