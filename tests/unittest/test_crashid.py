import datetime

from antenna import crashid


def test_create_encodes_throttle_and_date():
    when = datetime.datetime(2016, 9, 18, tzinfo=datetime.timezone.utc)
    accepted = crashid.create_crash_id(when, 0)
    deferred = crashid.create_crash_id(when, 1)
    assert accepted.endswith("0160918") and deferred.endswith("1160918")
    assert crashid.is_valid_crash_id(accepted)
    assert crashid.date_from_crash_id(accepted) == datetime.date(2016, 9, 18)
    assert crashid.throttle_digit(deferred) == 1
    assert accepted != crashid.create_crash_id(when, 0)


def test_validation_rejects_bad_ids():
    assert crashid.is_valid_crash_id("de1bb258-cbbf-4589-a673-34f800160918")
    for bad in [
        None,
        "",
        "de1bb258-cbbf-4589-a673-34f800161318",  # month 13
        "de1bb258-cbbf-4589-a673-34f802160918",  # throttle digit 2
        "DE1BB258-CBBF-4589-A673-34F800160918",
        "../../etc/passwd",
        "de1bb258-cbbf-4589-a673-34f800160918\n",
    ]:
        assert not crashid.is_valid_crash_id(bad), bad


def test_date_is_read_like_strptime():
    """Two-digit years pivot at 69, as ``strptime("%y")`` does; impossible dates raise."""
    prefix = "de1bb258-cbbf-4589-a673-34f80"
    assert crashid.date_from_crash_id(prefix + "0000229") == datetime.date(2000, 2, 29)
    assert crashid.date_from_crash_id(prefix + "0680101") == datetime.date(2068, 1, 1)
    assert crashid.date_from_crash_id(prefix + "0690101") == datetime.date(1969, 1, 1)
    for bad in ("0010229", "0261301", "02611x1", "0261"):
        try:
            crashid.date_from_crash_id(prefix + bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad} gave a date")
