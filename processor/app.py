"""The processor's process-level wiring: storage, metrics and the Processor itself."""

import logging

from antenna.libconfig import runtime_config_lines, verify_options
from antenna.metrics import PrefixedMetrics
from antenna.service import ServiceBase
from processor.processor import Processor

LOGGER = logging.getLogger(__name__)


def build_processor(config, crashstorage, metrics_backend):
    """A Processor configured from ``PROCESSOR_*`` options, its metrics named ``processor.*``."""
    processor = Processor(
        config.with_namespace("processor"),
        crashstorage,
        PrefixedMetrics(metrics_backend, "processor"),
    )
    verify_options(config, processor.components())
    for line in runtime_config_lines(config, processor.components()):
        LOGGER.info("config: %s", line)
    return processor


class ProcessorApp(ServiceBase):
    """A standalone processor process (CLI or SQS worker): same storage settings as the collector."""

    def __init__(self, config):
        super().__init__(config)
        verify_options(config, [([], self), (["crashstorage"], self.crashstorage)])
        self.processor = build_processor(config, self.crashstorage, self.metrics_backend)
