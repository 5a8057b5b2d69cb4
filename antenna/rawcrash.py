"""The in-memory crash report passed from the request to the crashmovers."""


class CrashReport:
    """Annotations, dumps and collector metadata of one submission.

    ``annotations`` and ``metadata`` become the raw crash JSON; ``dumps`` maps
    sanitized dump names to bytes.
    """

    def __init__(self, crash_id=None, annotations=None, dumps=None, metadata=None):
        self.crash_id = crash_id
        self.annotations = annotations if annotations is not None else {}
        self.dumps = dumps if dumps is not None else {}
        self.checksums = {}
        self.metadata = metadata if metadata is not None else {}
        self.notes = []

    def add_annotation(self, key, value):
        """First value wins; later duplicates are noted, not silently merged."""
        key = key.replace("\x00", "")
        if key in self.annotations:
            self.note(f"duplicate annotation {key!r} ignored")
            return
        self.annotations[key] = value

    def note(self, message):
        self.notes.append(message)

    @property
    def size(self):
        """Bytes this report holds in memory (dumps dominate)."""
        annotations = self.annotations
        return (
            sum(map(len, self.dumps.values()))
            + sum(map(len, annotations))
            + sum(map(len, annotations.values()))
        )
