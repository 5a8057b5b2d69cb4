"""Which product and version a crash comes from, whichever crash reporter sent it.

Breakpad clients and Socorro send ``ProductName``/``Version``; Electron sends the app's
name and version as ``_productName``/``_version`` (its ``prod``/``ver`` name Electron
itself); other Crashpad embedders follow Chromium with ``prod``/``ver``.  The collector's
supported-products list and throttle rules, the processor's release and its Sentry routes
all read the first non-empty one, so an Electron app is the same product everywhere.
"""

PRODUCT_ANNOTATIONS = ("ProductName", "_productName", "prod")
VERSION_ANNOTATIONS = ("Version", "_version", "ver")


def first_annotation(raw_crash, names):
    """The first non-empty string value among ``names``, or None."""
    for name in names:
        value = raw_crash.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def with_product_names(raw_crash):
    """``raw_crash`` as rules written against Breakpad's names expect it.

    ``ProductName``/``Version`` are filled in from the fallbacks when absent or empty.
    Rules and routes are operators' code matching ``raw_crash["ProductName"]``; without
    this, every Electron crash would silently miss them.  The stored raw crash is not
    changed: this returns a copy when something was filled in, else ``raw_crash`` itself.
    """
    filled = {}
    for name, names in (("ProductName", PRODUCT_ANNOTATIONS), ("Version", VERSION_ANNOTATIONS)):
        value = first_annotation(raw_crash, names)
        if value is not None and raw_crash.get(name) != value:
            filled[name] = value
    return {**raw_crash, **filled} if filled else raw_crash
