import random
import re

import pytest
from everett.manager import ConfigManager

from antenna import throttler as t
from antenna.throttler import Rule, Throttler


def make(rules=None, products=None, seed=1):
    cfg = {}
    if products is not None:
        cfg["PRODUCTS"] = products
    throttler = Throttler(ConfigManager.from_dict(cfg), rng=random.Random(seed))
    if rules is not None:
        throttler.rules = rules
    return throttler


def test_accept_all_by_default():
    assert make().throttle({"ProductName": "X"}) == (t.ACCEPT, "accept_everything", 100)


def test_first_matching_rule_decides():
    rules = [
        Rule("callable", "Version", lambda thr, v: v.startswith("2"), t.DEFER),
        Rule("regex", "ProductName", re.compile(r"^Fire"), t.REJECT),
        Rule("literal", "ReleaseChannel", "nightly", t.FAKEACCEPT),
        Rule("continue", "*", t.always_match, t.CONTINUE),
    ]
    throttler = make(rules)
    assert throttler.throttle({"Version": "2.0", "ProductName": "Firefox"})[:2] == (t.DEFER, "callable")
    assert throttler.throttle({"ProductName": "Firefox"})[:2] == (t.REJECT, "regex")
    assert throttler.throttle({"ReleaseChannel": "nightly"})[:2] == (t.FAKEACCEPT, "literal")
    assert throttler.throttle({"Other": "x"}) == (t.ACCEPT, "NO_MATCH", 100)


def test_a_rule_that_raises_does_not_match(caplog):
    rules = [
        Rule("numeric", "Version", lambda thr, v: int(v) > 3, t.REJECT),
        Rule("defer", "*", t.always_match, t.DEFER),
    ]
    assert make(rules).throttle({"Version": "4"})[:2] == (t.REJECT, "numeric")
    assert make(rules).throttle({"Version": "4.0b1"})[:2] == (t.DEFER, "defer")
    assert "throttle rule numeric failed" in caplog.text


def test_percentage_sampling_is_roughly_right():
    throttler = make([Rule("sample", "*", t.always_match, 25)])
    results = [throttler.throttle({})[0] for _ in range(4000)]
    share = results.count(t.ACCEPT) / len(results)
    assert 0.22 < share < 0.28
    assert set(results) == {t.ACCEPT, t.DEFER}
    assert throttler.throttle({})[2] == 25


def test_throttleable_zero_skips_rules():
    throttler = make([Rule("reject", "*", t.always_match, t.REJECT)])
    assert throttler.throttle({"Throttleable": "0"}) == (t.ACCEPT, "THROTTLEABLE_0", 100)


def test_products_list_rejects_unsupported():
    throttler = make(products="antenna.throttle_rules_example.PRODUCTS")
    assert throttler.throttle({"ProductName": "Nope"})[:2] == (t.REJECT, "unsupported_product")
    assert throttler.throttle({"ProductName": "MyApp"})[0] == t.ACCEPT


def test_electron_and_crashpad_product_names_count_as_the_product():
    throttler = make(products="antenna.throttle_rules_example.PRODUCTS")
    assert throttler.throttle({"_productName": "MyApp"})[0] == t.ACCEPT
    assert throttler.throttle({"prod": "MyApp Beta", "ver": "1.0"})[0] == t.ACCEPT
    assert throttler.throttle({"prod": "Nope"})[:2] == (t.REJECT, "unsupported_product")
    assert throttler.throttle({})[:2] == (t.REJECT, "unsupported_product")
    rules = [Rule("v2", "Version", lambda thr, v: v.startswith("2"), t.DEFER)]
    assert make(rules=rules).throttle({"_version": "2.1"})[:2] == (t.DEFER, "v2")


def test_bad_rules_path_is_a_config_error():
    from everett import InvalidValueError

    with pytest.raises(InvalidValueError):
        Throttler(ConfigManager.from_dict({"THROTTLE_RULES": "antenna.nope.RULES"}))
