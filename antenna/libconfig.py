"""Everett plumbing shared by the collector and the processor.

Configuration comes from the process environment first, then from the env file
named by ``ANTENNA_ENV`` (``dev.env`` holds the development defaults).  Every
component declares its own options in a nested ``Config`` class; this module
only builds the manager and renders the effective configuration for logs.
"""

import os

from everett.manager import (
    ConfigDictEnv,
    ConfigEnvFileEnv,
    ConfigManager,
    ConfigOSEnv,
    generate_uppercase_key,
    get_config_for_class,
)

CONFIG_DOC = "Configuration is read from environment variables, then from the ANTENNA_ENV file."

SECRET_MARKERS = ("SECRET", "PASSWORD", "DSN", "ACCESS_KEY", "TOKEN")


def build_config_manager(environ=None):
    """Return the project's ConfigManager: environment first, then ANTENNA_ENV.

    ``environ`` replaces the process environment (tests pass a dict).
    """
    if environ is None:
        environments = [ConfigOSEnv()]
        env_file = os.environ.get("ANTENNA_ENV", "")
    else:
        environments = [ConfigDictEnv(dict(environ))]
        env_file = environ.get("ANTENNA_ENV", "")
    if env_file:
        environments.append(ConfigEnvFileEnv([env_file]))
    return ConfigManager(environments=environments, doc=CONFIG_DOC)


def is_secret(key):
    """Keys whose values must never reach a log line."""
    return any(marker in key.upper() for marker in SECRET_MARKERS)


def mask(value):
    """Keep enough of a secret to recognise it, never enough to use it."""
    value = str(value)
    if not value:
        return value
    return "*****" if len(value) < 12 else value[:4] + "*****"


def runtime_config_lines(config, components):
    """``KEY=value`` lines of the effective config, secrets masked.

    ``components`` is a list of (namespace list, component); each component's own
    options are listed, without recursing into its attributes.
    """
    lines = []
    for namespace, key, scoped in component_options(config, components):
        value = scoped(key, raise_error=False, raw_value=True)
        full_key = generate_uppercase_key(key, namespace).upper()
        value = "" if value is None else str(value)
        if is_secret(full_key):
            value = mask(value)
        lines.append(f"{full_key}={value}")
    return lines


def verify_options(config, components):
    """Parse every option now, so bad config stops start-up instead of a later request."""
    for _namespace, key, scoped in component_options(config, components):
        scoped(key)


def component_options(config, components):
    """(namespace, key, component-scoped config) for each option a component declares."""
    for namespace, component in components:
        scoped = config.with_namespace(namespace).with_options(component)
        for key in get_config_for_class(component.__class__):
            yield namespace, key, scoped
