"""Blocking calls in a gevent thread pool, with exceptions raised only to the caller.

``ThreadPool.apply`` re-raises an exception of the function in the calling greenlet, and
also hands it to the hub's error handler, which prints a traceback to stderr.  A
malformed crash (a 400) or a retried save during a disk outage is an outcome the caller
handles and logs as JSON; it must not also print a traceback per request.
"""


class _Raised:
    """What ``func`` raised, carried back from the thread as a value."""

    __slots__ = ("exception",)

    def __init__(self, exception):
        self.exception = exception


def _capture(func, args):
    try:
        return func(*args)
    except Exception as exc:
        return _Raised(exc)


def call_in_thread(pool, func, *args):
    """``pool.apply(func, args)``; whatever ``func`` raises is raised here, and only here."""
    outcome = pool.apply(_capture, (func, args))
    if isinstance(outcome, _Raised):
        raise outcome.exception
    return outcome
