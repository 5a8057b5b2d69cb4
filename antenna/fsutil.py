"""Small filesystem helpers shared by storage, spool and caches."""

import os
import uuid


def atomic_write(path, data):
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    Durability is the caller's business (``antenna.durability.SyncBarrier``).
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    with open(tmp, "wb") as fp:
        fp.write(data)
    os.replace(tmp, path)


def atomic_link(source, path):
    """Give ``source``'s file the name ``path`` too, replacing any file there atomically."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    os.link(source, tmp)
    os.replace(tmp, path)
