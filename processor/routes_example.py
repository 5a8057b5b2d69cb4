"""Example Sentry routes: ``PROCESSOR_SENTRY_ROUTES=processor.routes_example.ROUTES``.

Mobile builds go to their own project, and within it one device family gets a separate
project (say, for a vendor partnership); nightly test crashes go nowhere. DSNs are named,
not written here: set ``PROCESSOR_SENTRY_DSN_MOBILE`` and ``PROCESSOR_SENTRY_DSN_PIXEL``.
"""

import re

from processor.routing import Route

ROUTES = [
    # Crashes from automated test runs are not worth a Sentry issue.
    Route("test-automation", lambda raw: raw.get("TestAutomation") == "1", None),
    # Order matters: the narrower device route comes before the product-wide one.
    Route("pixel", {"ProductName": "Fenix", "Android_Model": re.compile(r"^Pixel\b")},
          "SENTRY_DSN_PIXEL"),
    Route("mobile", {"ProductName": re.compile(r"^(Fenix|Focus)$")}, "SENTRY_DSN_MOBILE"),
]
