"""Logging set-up: one mozlog JSON object per line, or readable text in development."""

import logging
import logging.config
import socket

from dockerflow.logging import MozlogFormatter


class AntennaMozlogFormatter(MozlogFormatter):
    """Mozlog with the field names our log pipeline indexes: message, crash_id, host_id."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.host_id = socket.gethostname()

    def convert_record(self, record):
        out = super().convert_record(record)
        fields = out["Fields"]
        if "msg" in fields:
            fields["message"] = fields.pop("msg")
        fields.setdefault("host_id", self.host_id)
        return out


class CrashIdTextFormatter(logging.Formatter):
    """Readable development format that still shows which crash a line is about."""

    def format(self, record):
        line = super().format(record)
        crash_id = getattr(record, "crash_id", None)
        return f"{line} [crash_id={crash_id}]" if crash_id else line


def setup_logging(level="INFO", fmt="json", logger_name="antenna"):
    """Configure the root logger once per process.

    ``fmt`` is ``json`` (production, mozlog) or ``text`` (development).
    """
    formatters = {
        "json": {"()": AntennaMozlogFormatter, "logger_name": logger_name},
        "text": {
            "()": CrashIdTextFormatter,
            "format": "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s",
        },
    }
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"selected": formatters[fmt]},
            "handlers": {
                "console": {
                    "class": "logging.StreamHandler",
                    "formatter": "selected",
                    "level": "DEBUG",
                }
            },
            "loggers": {
                "antenna": {"level": level},
                "processor": {"level": level},
                "gunicorn": {"level": level},
                "botocore": {"level": "WARNING"},
                "boto3": {"level": "WARNING"},
                "urllib3": {"level": "WARNING"},
            },
            "root": {"handlers": ["console"], "level": "WARNING"},
        }
    )
