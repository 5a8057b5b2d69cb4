"""Small filesystem helpers for filesystem crash storage.

Both helpers create missing parent folders only when the first attempt says they are
missing: calling ``os.makedirs`` before every write costs syscalls on the collector's
hottest path, and folders may be removed behind our back (cleanup jobs, tests).
"""

import itertools
import os

_tmp_counter = itertools.count()


def _tmp_name(path):
    """A name no other writer uses: pid + a per-process counter (no random syscall)."""
    return f"{path}.tmp-{os.getpid()}-{next(_tmp_counter)}"


def _with_parent(path, operation):
    try:
        return operation()
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return operation()


def _write_new(path, data):
    with open(path, "wb") as fp:
        fp.write(data)


def atomic_write(path, data):
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    Durability is the caller's business (``antenna.durability.SyncBarrier``).
    """
    tmp = _tmp_name(path)
    _with_parent(path, lambda: _write_new(tmp, data))
    os.replace(tmp, path)


def atomic_link(source, path):
    """Give ``source``'s file the name ``path`` too, replacing any file there atomically."""
    try:
        _with_parent(path, lambda: os.link(source, path))
    except FileExistsError:
        tmp = _tmp_name(path)
        os.link(source, tmp)
        os.replace(tmp, path)
