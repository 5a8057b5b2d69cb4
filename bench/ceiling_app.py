"""The benchmark ceiling: a bare WSGI app that reads the whole body and answers 200.

Served exactly like the collector (``gunicorn --worker-class gevent --workers 1
bench.ceiling_app:application``), it measures what gunicorn, gevent and the
loopback cost on their own, so the collector's figures can be read as ratios.
"""

CHUNK = 256 * 1024
BODY = b"CrashID=bp-00000000-0000-0000-0000-000000000000\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    stream = environ["wsgi.input"]
    while stream.read(CHUNK):
        pass
    start_response("200 OK", HEADERS)
    return [BODY]
