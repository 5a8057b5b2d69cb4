import re

import pytest
from everett.manager import ConfigManager

from processor.routing import Route, SentryRouter, parse_routes

DEFAULT = "http://aaaa@127.0.0.1:9000/1"
MOBILE = "http://bbbb@127.0.0.1:9000/2"
PIXEL = "http://cccc@127.0.0.1:9000/3"

# Referenced by dotted path from the tests below.
TEST_ROUTES = [
    Route("literal", {"ProductName": "Literal"}, "http://dddd@127.0.0.1:9000/4"),
    Route("callable", lambda raw: raw.get("Vendor", "").startswith("AC"), "SENTRY_DSN_MOBILE"),
]


def router(**values):
    return SentryRouter(ConfigManager.from_dict(values).with_namespace("processor"))


def test_default_only():
    assert router(PROCESSOR_SENTRY_DSN=DEFAULT).pick_dsn({"ProductName": "X"}) == \
        ("default", DEFAULT)


def test_nothing_configured_sends_nowhere():
    assert router().pick_dsn({"ProductName": "X"}) == (None, None)


def test_example_routes():
    r = router(PROCESSOR_SENTRY_DSN=DEFAULT,
               PROCESSOR_SENTRY_ROUTES="processor.routes_example.ROUTES",
               PROCESSOR_SENTRY_DSN_MOBILE=MOBILE,
               SENTRY_DSN_PIXEL=PIXEL)  # root-level name works too
    assert r.pick_dsn({"ProductName": "Fenix", "Android_Model": "Pixel 7"}) == ("pixel", PIXEL)
    assert r.pick_dsn({"ProductName": "Fenix", "Android_Model": "SM-G991B"}) == \
        ("mobile", MOBILE)
    assert r.pick_dsn({"ProductName": "Focus"}) == ("mobile", MOBILE)
    assert r.pick_dsn({"ProductName": "Focusing"}) == ("default", DEFAULT)
    assert r.pick_dsn({"ProductName": "Fenix", "TestAutomation": "1"}) == (None, None)
    assert r.pick_dsn({}) == ("default", DEFAULT)


def test_literal_and_callable_routes():
    r = router(PROCESSOR_SENTRY_ROUTES="tests.unittest.test_routing.TEST_ROUTES",
               PROCESSOR_SENTRY_DSN_MOBILE=MOBILE)
    assert r.pick_dsn({"ProductName": "Literal"}) == ("literal", "http://dddd@127.0.0.1:9000/4")
    assert r.pick_dsn({"Vendor": "ACME"}) == ("callable", MOBILE)
    assert r.pick_dsn({"Vendor": "Other"}) == (None, None)


def test_a_route_that_raises_does_not_match(caplog):
    r = router(PROCESSOR_SENTRY_DSN=DEFAULT,
               PROCESSOR_SENTRY_ROUTES="tests.unittest.test_routing.TEST_ROUTES",
               PROCESSOR_SENTRY_DSN_MOBILE=MOBILE)
    assert r.pick_dsn({"Vendor": ["not", "a", "string"]}) == ("default", DEFAULT)
    assert "Sentry route callable failed" in caplog.text


def test_missing_named_dsn_fails_at_startup():
    with pytest.raises(ValueError, match="SENTRY_DSN_MOBILE"):
        router(PROCESSOR_SENTRY_ROUTES="processor.routes_example.ROUTES",
               PROCESSOR_SENTRY_DSN_PIXEL=PIXEL)


def test_dict_condition_requires_every_key_and_string_values():
    route = Route("r", {"A": "1", "B": re.compile("^x")}, None)
    assert route.matches({"A": "1", "B": "xyz"})
    assert not route.matches({"A": "1", "B": "yx"})
    assert not route.matches({"A": "1"})
    assert not route.matches({"A": 1, "B": "x"})


def test_parse_routes_rejects_non_routes():
    assert parse_routes("") == []
    with pytest.raises(ValueError):
        parse_routes("tests.unittest.test_routing.DEFAULT")


def test_electron_and_crashpad_products_take_the_product_routes():
    r = router(PROCESSOR_SENTRY_DSN=DEFAULT,
               PROCESSOR_SENTRY_ROUTES="processor.routes_example.ROUTES",
               PROCESSOR_SENTRY_DSN_MOBILE=MOBILE,
               SENTRY_DSN_PIXEL=PIXEL)
    assert r.pick_dsn({"_productName": "Focus", "_version": "2.0"}) == ("mobile", MOBILE)
    assert r.pick_dsn({"prod": "Fenix", "Android_Model": "Pixel 8"}) == ("pixel", PIXEL)
    # ProductName, when sent, wins over the fallbacks.
    assert r.pick_dsn({"ProductName": "Desktop", "prod": "Fenix"}) == ("default", DEFAULT)
