"""Small filesystem helpers shared by storage, spool and caches."""

import os
import uuid


def atomic_write(path, data, fsync=True):
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    With ``fsync`` the content is on disk before the rename makes it visible.
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    with open(tmp, "wb") as fp:
        fp.write(data)
        if fsync:
            fp.flush()
            os.fsync(fp.fileno())
    os.replace(tmp, path)
