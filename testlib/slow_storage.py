"""Fault injection for system tests: filesystem storage that can be made slow."""

import time

from everett.manager import Option

from antenna.ext.fs.crashstorage import FSCrashStorage


class SlowFSCrashStorage(FSCrashStorage):
    """FSCrashStorage that sleeps before every save, to simulate a slow S3."""

    class Config:
        save_delay = Option(default="0", parser=float, doc="Seconds to sleep before each save.")

    def __init__(self, config):
        super().__init__(config)
        self.save_delay = self.config("save_delay")

    def save_dump_names(self, crash_id, dump_names):
        """Every save path comes here, once per crash."""
        time.sleep(self.save_delay)
        super().save_dump_names(crash_id, dump_names)
