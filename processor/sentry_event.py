"""Turn a processed crash into a native Sentry event (DESIGN.md "Sentry event").

We symbolicate ourselves, so the event is sent fully formed: the stack of the crashing thread
as the exception, every other thread's stack under ``threads``, and the module list under
``debug_meta`` so Sentry's UI can show images. The minidump is never sent as
``event.minidump`` (Sentry would reprocess it and replace all of this).

Grouping is by our signature (``fingerprint``), so Sentry issues match the processor's.
"""

import datetime
import functools
import operator
import re
import uuid

import orjson
from everett.manager import ListOf, Option

from processor.scrub import scrub_annotations, scrub_path, scrub_text

# Fields the collector adds to the raw crash; they describe the submission, not the crash.
COLLECTOR_KEYS = frozenset({
    "uuid", "crash_id", "submitted_timestamp", "timestamp", "type_tag", "dump_checksums",
    "legacy_processing", "throttle_rate", "metadata",
})

# Sentry limits tag values to 200 characters and forbids newlines.
MAX_TAG_VALUE = 200

DEFAULT_SYSTEM_MODULES = (
    # Linux / Android
    r"^(ld-|ld\.so|linux-gate|linux-vdso|libc[.-]|libc\+\+|libstdc\+\+|libm[.-]|libgcc|libdl"
    r"|libpthread|librt|libresolv|libnss|libselinux|libz\.|libutil|libcrypt|libsystemd"
    r"|libX|libxcb|libGL|libEGL|libdbus|libglib|libgobject|libgio|libgtk|libgdk|libpango"
    r"|libcairo|libfontconfig|libfreetype|libexpat|libffi|libasound|libpulse|libart|libbinder"
    r"|libutils|libcutils|liblog|libandroid|libhwui|libbase|app_process|linker|libicu|libssl"
    r"|libcrypto)"
    # Windows
    r"|^(ntdll|kernel32|kernelbase|user32|gdi32|gdi32full|win32u|combase|ole32|oleaut32"
    r"|rpcrt4|sechost|advapi32|msvcrt|msvcp\d*|vcruntime\d*|ucrtbase|ws2_32|shell32|shlwapi"
    r"|bcrypt|bcryptprimitives|cryptbase|crypt32|sspicli|dbghelp|dbgcore|apphelp|uxtheme"
    r"|dwmapi|d3d\d+|dxgi|nvwgf\w*|atidxx\w*|igd\w*|cfgmgr32|setupapi|msctf|imm32|wow64\w*"
    r"|version|winmm|powrprof|profapi|userenv|comctl32|comdlg32)\.dll$"
    # macOS / iOS
    r"|\.dylib$|^(CoreFoundation|Foundation|AppKit|UIKit|CoreGraphics|QuartzCore|Security"
    r"|IOKit|CFNetwork|HIToolbox|Metal|dyld|libsystem_\w+)$"
)

_IMAGE_TYPES = {"linux": "elf", "android": "elf", "windows": "pe", "mac": "macho", "ios": "macho"}

_ARCHES = {"amd64": "x86_64", "x86_64": "x86_64", "x86": "x86", "arm64": "arm64",
           "aarch64": "arm64", "arm": "arm", "ppc": "ppc", "ppc64": "ppc64", "mips": "mips",
           "mips64": "mips64", "riscv64": "riscv64", "sparc": "sparc"}


def parse_context_map(value):
    """Parse ``"device.model=Android_Model,app.start=StartupTime"`` into
    ``[("device", "model", "Android_Model"), ...]``."""
    result = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        target, _, annotation = item.partition("=")
        context, _, field = target.strip().partition(".")
        if not (context and field and annotation.strip()):
            raise ValueError(f"expected context.field=Annotation, got {item!r}")
        result.append((context, field.strip(), annotation.strip()))
    return result


@functools.lru_cache(maxsize=16384)
def breakpad_to_sentry_debug_id(debug_id):
    """Breakpad's 33+ hex char id (GUID + age) to Sentry's ``uuid[-age]`` form.

    ``C0BCC3F19827FE653058404B2831D9E60`` -> ``c0bcc3f1-9827-fe65-3058-404b2831d9e6``
    ``3249D99D0C4049318610F4E4FB0B69361`` -> ``3249d99d-0c40-4931-8610-f4e4fb0b6936-1``
    Returns None for anything else (Sentry rejects malformed ids, an absent one is fine).
    Cached: the same libraries come back crash after crash, and ``uuid.UUID`` is slow.
    """
    if not debug_id or not re.fullmatch(r"[0-9a-fA-F]{33,40}", debug_id):
        return None
    text = debug_id.lower()
    guid = str(uuid.UUID(text[:32]))
    age = int(text[32:], 16)
    return f"{guid}-{age:x}" if age else guid


def _int(value):
    try:
        return int(value, 16) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        return None


# A frame's number, for sorting; a C-level callable because a big crash sorts
# tens of thousands of frames.
_frame_number = operator.methodcaller("get", "frame", 0)

# A processed frame's fields that its Sentry frame depends on (not its number).
_FRAME_FIELDS = ("offset", "module", "function", "file", "line", "function_offset",
                 "module_offset", "trust")
_frame_fields = operator.itemgetter(*_FRAME_FIELDS)


def _tag_value(value):
    text = " ".join(str(value).split())
    return text[:MAX_TAG_VALUE]


class SentryEventBuilder:
    """Builds events; its options choose which annotations map to which event fields."""

    class Config:
        sentry_product_annotation = Option(
            default="ProductName",
            doc="Annotation whose value is the product (release `<product>@<version>`); "
            "falls back to the processed crash's product.",
        )
        sentry_version_annotation = Option(
            default="Version", doc="Annotation holding the version used in the release."
        )
        sentry_environment_annotation = Option(
            default="ReleaseChannel",
            doc="Annotation whose value becomes the Sentry environment.",
        )
        sentry_tag_annotations = Option(
            default="ProcessType,Vendor",
            parser=ListOf(str),
            doc="Comma-separated annotations copied as tags (after scrubbing).",
        )
        sentry_context_annotations = Option(
            default="device.model=Android_Model,device.manufacturer=Android_Manufacturer,"
            "device.model=DeviceModel",
            parser=parse_context_map,
            doc="Comma-separated `context.field=Annotation` pairs copied into contexts.",
        )
        sentry_extra_allow_keys = Option(
            default="",
            parser=ListOf(str),
            doc="Annotations sent in `extra` verbatim, without scrubbing (URLs, e-mails...).",
        )
        sentry_drop_annotations = Option(
            default="Comments,Email,URL,UserID,InstallTime,ServerURL",
            parser=ListOf(str),
            doc="Annotations never sent to Sentry, not even scrubbed.",
        )
        sentry_in_app_modules = Option(
            default="",
            doc="Regex: modules whose frames are in-app. Empty: the main module and every "
            "module not matching sentry_system_modules.",
        )
        sentry_max_frames = Option(
            default="250",
            parser=int,
            doc="Frames kept for the crashing thread (innermost first; Sentry keeps 250).",
        )
        sentry_max_thread_frames = Option(
            default="40",
            parser=int,
            doc="Frames kept for each other thread, innermost first.",
        )
        sentry_max_event_bytes = Option(
            default="800000",
            parser=int,
            doc="Size budget for the event JSON (Sentry rejects events over 1 MB); other "
            "threads' stacks are dropped, last thread first, until it fits.",
        )
        sentry_system_modules = Option(
            default=DEFAULT_SYSTEM_MODULES,
            doc="Regex (case-insensitive) of system library names; their frames are not in-app.",
        )

    def __init__(self, config):
        self.config = config.with_options(self)
        # Options are read once: everett resolves each call anew, and a big crash
        # would otherwise ask for the same values once per thread.
        in_app = self.config("sentry_in_app_modules")
        self._in_app_re = re.compile(in_app) if in_app else None
        self._system_re = re.compile(self.config("sentry_system_modules"), re.IGNORECASE)
        self._max_frames = self.config("sentry_max_frames")
        self._max_thread_frames = self.config("sentry_max_thread_frames")
        self._max_event_bytes = self.config("sentry_max_event_bytes")
        self._product_key = self.config("sentry_product_annotation")
        self._version_key = self.config("sentry_version_annotation")
        self._environment_key = self.config("sentry_environment_annotation")
        self._tag_keys = self.config("sentry_tag_annotations")
        self._context_keys = self.config("sentry_context_annotations")
        self._extra_allow_keys = self.config("sentry_extra_allow_keys")
        self._mapped_keys = COLLECTOR_KEYS | {
            self._product_key, self._version_key, self._environment_key,
            *self._tag_keys,
            *(annotation for _, _, annotation in self._context_keys),
            *self.config("sentry_drop_annotations"),
        }

    def build(self, processed_crash, raw_crash):
        """Return the event dict for one processed crash (see module docstring)."""
        return self.build_with_payload(processed_crash, raw_crash)[0]

    def build_with_payload(self, processed_crash, raw_crash):
        """Return ``(event, payload)``: the event and its JSON as sent in the envelope.

        Fitting the event into its size budget serializes it anyway; handing those bytes
        to :meth:`SentryDelivery.send <processor.sentry_delivery.SentryDelivery.send>`
        spares serializing a big event a second time.
        """
        pc = processed_crash
        crash_id = pc.get("crash_id") or raw_crash.get("uuid") or ""
        modules = pc.get("modules") or []
        # Breakpad lists the main module (the executable) first.
        main_module = modules[0].get("filename") if modules else None

        product = self._annotation(raw_crash, self._product_key) or pc.get("product")
        version = self._annotation(raw_crash, self._version_key) or pc.get("version")
        environment = (self._annotation(raw_crash, self._environment_key)
                       or pc.get("release_channel"))
        signature = pc.get("signature") or "EMPTY: no signature"
        reason = pc.get("reason") or "Unknown"
        crashing = pc.get("crashing_thread")
        threads = pc.get("threads") or []
        crash_thread = next((t for t in threads if t.get("thread_index") == crashing), None)
        crash_frames = (crash_thread or {}).get("frames") or []

        exception = {
            "type": reason,
            "value": self._exception_value(pc, reason, crash_frames),
            "mechanism": {"type": "minidump", "handled": False, "synthetic": True},
        }
        if crashing is not None:
            exception["thread_id"] = crashing
        # Sentry frames by processed frame (its fields but the number): threads parked in
        # the same functions share most of their frames.
        converted = {}
        if crash_frames:
            exception["stacktrace"] = self._stacktrace(
                crash_frames, main_module, self._max_frames, converted)

        event = {
            "event_id": self._event_id(crash_id),
            "timestamp": self._timestamp(raw_crash),
            "platform": "native",
            "level": "fatal",
            "logger": "minidump",
            "exception": {"values": [exception]},
            "threads": {"values": self._threads(threads, crashing, main_module, converted)},
            "debug_meta": {"images": self._images(pc, modules)},
            "contexts": self._contexts(pc, raw_crash, product, version),
            "tags": self._tags(pc, raw_crash, product, version, signature, crash_id),
            "fingerprint": [signature],
            "transaction": self._transaction(crash_frames, signature),
            "extra": self._extra(raw_crash),
        }
        if product and version:
            event["release"] = f"{product}@{version}"[:200]
        if environment:
            event["environment"] = _tag_value(environment).replace("/", "-")[:64]
        return event, self._fit(event)

    # -- pieces -------------------------------------------------------------------------

    @staticmethod
    def _annotation(raw_crash, key):
        value = raw_crash.get(key)
        return value if isinstance(value, str) and value.strip() else None

    @staticmethod
    def _event_id(crash_id):
        """The crash id itself (hex): retries and accidental re-sends of one crash dedupe in
        Sentry (it drops repeated event ids), and an operator finds the event by crash id."""
        try:
            return uuid.UUID(crash_id).hex
        except ValueError:
            return uuid.uuid4().hex

    @staticmethod
    def _timestamp(raw_crash):
        """Crash time as the client reported it, else the collector's receive time."""
        for key in ("CrashTime", "timestamp"):
            try:
                return float(raw_crash[key])
            except (KeyError, TypeError, ValueError):
                pass
        submitted = raw_crash.get("submitted_timestamp")
        if submitted:
            try:
                parsed = datetime.datetime.fromisoformat(submitted)
                if parsed.tzinfo is None:
                    parsed = parsed.replace(tzinfo=datetime.UTC)
                return parsed.timestamp()
            except ValueError:
                pass
        return datetime.datetime.now(datetime.UTC).timestamp()

    @staticmethod
    def _exception_value(pc, reason, crash_frames):
        if crash_frames:
            address = pc.get("address")
            return f"{reason} at {address}" if address else reason
        # A failed or empty stackwalk: say what went wrong instead of pretending.
        stackwalker = pc.get("stackwalker") or {}
        returncode = stackwalker.get("returncode")
        if returncode not in (None, 0):
            error = f"exit {returncode}"
        else:
            error = stackwalker.get("status") or "no stackwalker output"
        signature = pc.get("signature") or "EMPTY: no frame data available"
        return scrub_text(f"{signature}; error: {error}")

    def _in_app(self, module, main_module):
        if not module:
            return False
        if self._in_app_re is not None:
            return bool(self._in_app_re.search(module))
        return module == main_module or not self._system_re.search(module)

    def _frame(self, frame, main_module):
        out = {}
        address = _int(frame.get("offset"))
        if address is not None:
            out["instruction_addr"] = hex(address)
        module = frame.get("module")
        if module:
            out["package"] = scrub_path(module)
        if frame.get("function"):
            out["function"] = frame["function"]
        if frame.get("file"):
            out["filename"] = scrub_path(frame["file"])
        if isinstance(frame.get("line"), int):
            out["lineno"] = frame["line"]
        if address is not None:
            function_offset = _int(frame.get("function_offset"))
            if function_offset is not None and function_offset <= address:
                out["symbol_addr"] = hex(address - function_offset)
            module_offset = _int(frame.get("module_offset"))
            if module_offset is not None and module_offset <= address:
                out["image_addr"] = hex(address - module_offset)
        if frame.get("trust"):
            out["trust"] = frame["trust"]
        out["in_app"] = self._in_app(module, main_module)
        return out

    def _stacktrace(self, frames, main_module, limit, converted):
        """Sentry wants the outermost frame first, the crashing frame last; we keep the
        innermost ``limit`` frames because that is where the crash is.

        ``converted`` memoizes :meth:`_frame` within one event; each event frame is
        still its own dict.
        """
        ordered = sorted(frames, key=_frame_number)[:limit]
        out = []
        for frame in reversed(ordered):
            try:
                key = _frame_fields(frame)
            except KeyError:  # a frame made elsewhere than parse_stackwalk may lack some
                key = tuple(frame.get(field) for field in _FRAME_FIELDS)
            sentry_frame = converted.get(key)
            if sentry_frame is None:
                sentry_frame = converted[key] = self._frame(frame, main_module)
            out.append(sentry_frame.copy())
        return {"frames": out}

    def _threads(self, threads, crashing, main_module, converted):
        """Every thread; the crashing one carries no stacktrace of its own because Sentry
        reads it from the exception (as Sentry itself does for minidumps)."""
        values = []
        for thread in threads:
            index = thread.get("thread_index")
            if index == crashing:
                entry = {"id": index, "crashed": True, "current": True}
            else:
                entry = {"id": index, "crashed": False, "current": False}
                if thread.get("frames"):
                    entry["stacktrace"] = self._stacktrace(
                        thread["frames"], main_module, self._max_thread_frames, converted)
            values.append(entry)
        return values

    def _fit(self, event):
        """Drop other threads' stacks, last thread first, until the event fits the budget;
        the event says so in ``extra`` so nobody mistakes the gap for the real stack.

        The size is that of the compact JSON the envelope carries; returns that JSON.
        """
        budget = self._max_event_bytes
        payload = orjson.dumps(event)
        size = len(payload)
        if size <= budget:
            return payload
        dropped = 0
        for thread in reversed(event["threads"]["values"]):
            stacktrace = thread.pop("stacktrace", None)
            if stacktrace is None:
                continue
            dropped += 1
            size -= len(orjson.dumps(stacktrace)) + len(',"stacktrace":')
            if size <= budget:
                break
        event["extra"]["sentry_trimmed"] = (
            f"stacks of {dropped} threads omitted to stay under {budget} bytes")
        return orjson.dumps(event)

    @staticmethod
    def _images(pc, modules):
        os_name = (pc.get("os_name") or "").lower()
        image_type = next((t for key, t in _IMAGE_TYPES.items() if key in os_name), "elf")
        arch = _ARCHES.get((pc.get("cpu_arch") or "").lower())
        images = []
        for module in modules:
            debug_id = breakpad_to_sentry_debug_id(module.get("debug_id"))
            if debug_id is None:
                # Mapped data files (Android's "dalvik-* space") have no debug id; Sentry
                # rejects native images without one, and they hold no code anyway.
                continue
            base = _int(module.get("base_addr"))
            if base is None:
                continue
            end = _int(module.get("end_addr"))
            image = {"type": image_type, "image_addr": hex(base), "debug_id": debug_id}
            if end is not None and end >= base:
                # Breakpad's end address is inclusive (base + size - 1).
                image["image_size"] = end - base + 1
            code_file = module.get("filename") or module.get("debug_file")
            image["code_file"] = scrub_path(code_file) or "<unknown>"
            if module.get("code_id"):
                image["code_id"] = module["code_id"]
            if module.get("debug_file"):
                image["debug_file"] = scrub_path(module["debug_file"])
            if arch:
                image["arch"] = arch
            images.append(image)
        return images

    def _contexts(self, pc, raw_crash, product, version):
        os_version = (pc.get("os_version") or "").strip()
        os_ctx = {"type": "os", "name": pc.get("os_name") or "Unknown"}
        if os_version:
            version_part, _, rest = os_version.partition(" ")
            os_ctx["version"] = version_part
            os_ctx["raw_description"] = scrub_text(os_version)
            if rest and "linux" in os_ctx["name"].lower():
                os_ctx["kernel_version"] = scrub_text(rest)
            elif rest:
                os_ctx["build"] = scrub_text(rest)
        device = {"type": "device"}
        arch = _ARCHES.get((pc.get("cpu_arch") or "").lower(), pc.get("cpu_arch"))
        if arch:
            device["arch"] = arch
        if pc.get("cpu_info"):
            device["cpu_description"] = pc["cpu_info"]
        if isinstance(pc.get("cpu_count"), int):
            device["processor_count"] = pc["cpu_count"]
        app = {"type": "app"}
        if product:
            app["app_name"] = product
        if version:
            app["app_version"] = version
        if pc.get("build"):
            app["app_build"] = str(pc["build"])
        contexts = {"os": os_ctx, "device": device, "app": app}
        for context, field, annotation in self._context_keys:
            value = raw_crash.get(annotation)
            if isinstance(value, str) and value:
                contexts.setdefault(context, {})[field] = scrub_text(value)
        return contexts

    def _tags(self, pc, raw_crash, product, version, signature, crash_id):
        tags = {
            "product": product,
            "version": version,
            "os": pc.get("os_name"),
            "cpu": pc.get("cpu_arch"),
            "crash_reason": pc.get("reason"),
            "signature": signature,
            "crash_id": crash_id,
        }
        for annotation in self._tag_keys:
            value = raw_crash.get(annotation)
            if isinstance(value, str):
                tags[annotation] = scrub_text(value)
        return {key: _tag_value(value) for key, value in tags.items() if value}

    @staticmethod
    def _transaction(crash_frames, signature):
        top = min(crash_frames, key=lambda f: f.get("frame", 0)) if crash_frames else {}
        return (top.get("function") or signature)[:200]

    def _extra(self, raw_crash):
        remaining = {k: v for k, v in raw_crash.items() if k not in self._mapped_keys}
        return scrub_annotations(remaining, self._extra_allow_keys)


def build_event(processed_crash, raw_crash, config):
    """Convenience wrapper: build one event with options read from ``config``."""
    return SentryEventBuilder(config).build(processed_crash, raw_crash)
