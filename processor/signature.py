"""Socorro-style crash signatures with siggen and the project's own siglists.

A signature groups crashes by cause: the crashing thread's top frames,
normalized, with the frames that only say *how* the process died (abort,
allocator, panic machinery) kept as prefixes and the ones that say nothing
(signal delivery, thread entry points) dropped, until the first frame that says
*where*. siggen implements that walk; the rule lists live in
``processor/siglists/`` (generic C/C++/Rust/libc rules, see its README) because
siggen's bundled lists describe Firefox internals.

siggen's default ruleset also carries Firefox-only rules (shutdown hangs, IPC
errors, Gecko hang annotations) that would rewrite our signatures on matching
annotation names, and one of them re-reads the bundled lists; the ruleset here
keeps only the generic rules.
"""

from pathlib import Path

from everett.manager import Option
from siggen.generator import SignatureGenerator
from siggen.rules import (
    AbortSignature,
    BadHardware,
    OOMSignature,
    SigFixWhitespace,
    SignatureGenerationRule,
    SigTruncate,
    StackOverflowSignature,
    StackwalkerErrorSignatureRule,
)

SIGLISTS_DIR = Path(__file__).resolve().parent / "siglists"

RULESET = [
    SignatureGenerationRule,
    StackwalkerErrorSignatureRule,  # "EMPTY: no frame data available; <stackwalker status>"
    BadHardware,
    OOMSignature,
    AbortSignature,
    StackOverflowSignature,
    # siggen requires these last, in this order.
    SigFixWhitespace,
    SigTruncate,
]

# Raw crash annotations siggen understands, by the names clients send them.
ANNOTATIONS = {
    "AbortMessage": "abort_message",
    "OOMAllocationSize": "oom_allocation_size",
}

FRAME_KEYS = ("frame", "module", "function", "file", "line", "module_offset", "offset")


def signature_input(processed_crash, raw_crash=None):
    """Map a processed crash (and raw annotations) to siggen's crash_data schema.

    siggen reads only the crashing thread's frames (``threads[crashing_thread]``),
    so only that thread is converted; the others keep their place in the list
    with no frames, which spares converting thousands of frames of a big dump.
    """
    crashing_thread = processed_crash.get("crashing_thread")
    threads = [
        {
            "frames": [
                {key: frame.get(key) for key in FRAME_KEYS}
                for frame in thread.get("frames") or []
            ]
            if position == crashing_thread
            else []
        }
        for position, thread in enumerate(processed_crash.get("threads") or [])
    ]
    crash_data = {
        "crashing_thread": crashing_thread,
        "threads": threads,
        "os": processed_crash.get("os_name"),
        "reason": processed_crash.get("reason"),
    }
    status = (processed_crash.get("stackwalker") or {}).get("status")
    if status:
        crash_data["mdsw_status_string"] = status
    for annotation, key in ANNOTATIONS.items():
        value = (raw_crash or {}).get(annotation)
        if value:
            crash_data[key] = value
    return crash_data


class SignatureMaker:
    """Computes ``signature``, ``proto_signature`` and notes for a processed crash."""

    class Config:
        siglists_dir = Option(
            default=str(SIGLISTS_DIR),
            doc="Folder of siggen signature lists (see processor/siglists/README.md).",
        )

    def __init__(self, config):
        self.config = config.with_options(self)
        self.generator = SignatureGenerator(
            ruleset=RULESET, signature_list_dir=self.config("siglists_dir")
        )

    def generate(self, processed_crash, raw_crash=None):
        """Return ``{"signature", "proto_signature", "signature_notes", "signature_debug"}``.

        A crash without frames on its crashing thread (failed stackwalk) gets
        ``EMPTY: no frame data available; <stackwalker status>``.
        """
        crash_data = signature_input(processed_crash, raw_crash)
        threads = crash_data["threads"]
        index = crash_data["crashing_thread"]
        if index is None or not (0 <= index < len(threads)):
            # siggen would fall back to thread 0; a missing or out-of-range
            # crashing thread means we have no crashing frames at all.
            crash_data["threads"] = []
            crash_data["crashing_thread"] = 0
        result = self.generator.generate(crash_data)
        return {
            "signature": result.signature,
            "proto_signature": result.extra.get("proto_signature", ""),
            "signature_notes": list(result.notes),
            "signature_debug": list(result.debug_log),
        }
