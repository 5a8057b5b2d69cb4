"""Builds crash-report payloads the way Breakpad/Crashpad clients send them."""

import gzip
import io
import json
import uuid


def multipart_body(annotations=None, dumps=None, boundary=None, extra_json=None, mixed=False):
    """Return ``(body bytes, headers)`` for a multipart crash submission.

    ``annotations`` is a dict or a list of (key, value) pairs (to allow duplicates);
    ``dumps`` maps part names to bytes (or (filename, bytes)); ``extra_json`` adds
    Crashpad's JSON ``extra`` part.
    """
    boundary = boundary or uuid.uuid4().hex
    buf = io.BytesIO()
    items = annotations.items() if isinstance(annotations, dict) else (annotations or [])
    for key, value in items:
        value = value if isinstance(value, bytes) else str(value).encode("utf-8")
        key = key if isinstance(key, bytes) else key.encode("utf-8")
        buf.write(b"--" + boundary.encode() + b"\r\n")
        buf.write(b'Content-Disposition: form-data; name="' + key + b'"\r\n\r\n')
        buf.write(value + b"\r\n")
    if extra_json is not None:
        data = extra_json if isinstance(extra_json, bytes) else json.dumps(extra_json).encode()
        buf.write(b"--" + boundary.encode() + b"\r\n")
        buf.write(b'Content-Disposition: form-data; name="extra"\r\n')
        buf.write(b"Content-Type: application/json\r\n\r\n")
        buf.write(data + b"\r\n")
    for name, content in (dumps or {}).items():
        filename, data = content if isinstance(content, tuple) else (f"{name}.dmp", content)
        buf.write(b"--" + boundary.encode() + b"\r\n")
        buf.write(
            f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'.encode()
        )
        buf.write(b"Content-Type: application/octet-stream\r\n\r\n")
        buf.write(data + b"\r\n")
    buf.write(b"--" + boundary.encode() + b"--\r\n")
    kind = "multipart/mixed" if mixed else "multipart/form-data"
    body = buf.getvalue()
    headers = {"Content-Type": f"{kind}; boundary={boundary}", "Content-Length": str(len(body))}
    return body, headers


def gzip_body(body, headers):
    """Compress a body the way Crashpad does with ``Content-Encoding: gzip``."""
    compressed = gzip.compress(body, compresslevel=6)
    headers = dict(headers, **{"Content-Encoding": "gzip", "Content-Length": str(len(compressed))})
    return compressed, headers


def realistic_annotations(count=40):
    """~40 annotations like a desktop product sends."""
    base = {
        "ProductName": "ExampleApp",
        "Version": "1.2.3",
        "ReleaseChannel": "release",
        "BuildID": "20261129120000",
        "Vendor": "Example",
        "CrashTime": "1795962825",
        "StartupTime": "1795960000",
        "Throttleable": "1",
    }
    for index in range(max(0, count - len(base))):
        base[f"Annotation{index:02d}"] = f"value {index} " + "x" * 40
    return base
