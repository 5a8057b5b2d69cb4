"""call_in_thread: results and exceptions come back to the caller, and nothing is printed."""

import gevent.threadpool
import pytest

from antenna.threadcall import call_in_thread


def test_result_and_exception_reach_the_caller_without_a_printed_traceback(capfd):
    pool = gevent.threadpool.ThreadPool(1)
    try:
        assert call_in_thread(pool, divmod, 7, 2) == (3, 1)
        with pytest.raises(ZeroDivisionError):
            call_in_thread(pool, divmod, 7, 0)
    finally:
        pool.kill()
    assert capfd.readouterr().err == ""
