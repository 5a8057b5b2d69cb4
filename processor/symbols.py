"""Make Breakpad symbols available to minidump_stackwalk.

The stackwalker only reads symbol folders in Breakpad layout
(``<debug_file>/<debug_id>/<name>.sym``); it cannot fetch anything. So before a
stackwalk, :meth:`SymbolsProvider.prepare` takes the dump's module list (see
:mod:`processor.minidump_modules`), downloads the symbol files that are neither
in a local folder nor already cached, in parallel, into a bounded local cache,
and returns the folders to pass to the stackwalker.

Design choices:

* Remote sources are HTTP symbol servers in the same layout (Mozilla's Tecken,
  a static file server, an S3 website) and ``s3://bucket/prefix`` buckets read
  with boto3. Sources are tried in order; the first one that has the file wins.
* Downloads are written to a temporary file in the destination folder and
  renamed into place, so a stackwalker (or another processor sharing the
  cache) never reads half a file, and a failed transfer leaves nothing behind.
* Misses (every source answered "not found", or no source is configured) are
  remembered in memory for ``symbols_miss_ttl`` seconds. In memory rather than
  on disk because a miss is cheap to re-learn (one 404 per process per TTL), a
  restart should forget it (the symbols may have been uploaded since), and disk
  markers would need their own cleanup. Errors (timeouts, 5xx, refused
  connections) are not remembered: the next crash asks again.
* Files found in a local folder are remembered the same way, so a crash of a
  known build costs no file system call per module (a Firefox crash has ~700).
  A remembered answer that went stale costs nothing but a fetch or a stat
  count: the stackwalker reads the local folders and the cache itself.
* The cache is bounded by ``symbols_cache_max_bytes``: every hit touches the
  file's mtime, and after each download the oldest files are removed until the
  cache fits. Files the current crash needs are never evicted by it.
* Parallel downloads use a gevent pool when sockets are monkey-patched (the
  processor process is), and a thread pool otherwise (tests, one-off scripts),
  so the fetches really overlap in both cases.
"""

import logging
import os
import re
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import boto3
import botocore.config
import gevent.monkey
import gevent.pool
import requests
from botocore.exceptions import BotoCoreError, ClientError
from everett.manager import Option

LOGGER = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
CHUNK_BYTES = 256 * 1024
# A temporary file older than this was left by a killed process, not by a
# download in progress.
STALE_TMP_SECONDS = 3600
# Bound on remembered misses (and local files), so a flood of unknown modules
# cannot grow memory.
MAX_REMEMBERED = 100_000
DEBUG_ID_RE = re.compile(r"[0-9A-Fa-f]{1,64}")

FETCHED, MISS, ERROR, HIT = "fetched", "miss", "error", "hit"


def comma_list(value):
    """Everett parser: comma-separated values, blanks dropped."""
    return [item.strip() for item in value.split(",") if item.strip()]


def symbol_relpath(debug_file, debug_id):
    """Return ``(debug_file, debug_id, sym_name)`` in Breakpad layout, or None.

    Breakpad names the file after the debug file, replacing a ``.pdb`` suffix
    (any case) with ``.sym`` and otherwise appending ``.sym``. Values come from
    an untrusted dump, so anything that could escape the symbol folder is
    refused.
    """
    if not isinstance(debug_file, str) or not isinstance(debug_id, str):
        return None
    if (
        not debug_file
        or len(debug_file) > 255
        or debug_file in (".", "..")
        or "/" in debug_file
        or "\\" in debug_file
        or "\0" in debug_file
        or not DEBUG_ID_RE.fullmatch(debug_id)
    ):
        return None
    stem = debug_file[:-4] if debug_file.lower().endswith(".pdb") else debug_file
    return (debug_file, debug_id, stem + ".sym")


def redact_url(url):
    """Drop credentials and query from a URL before it is logged."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", ""))


class HttpSource:
    """A symbol server answering GET ``<url>/<debug_file>/<debug_id>/<name>.sym``."""

    def __init__(self, url, session, timeout):
        self.url = url.rstrip("/")
        self.name = redact_url(url)
        self.session = session
        self.timeout = timeout

    def fetch(self, relpath, fp, deadline):
        """Write the file to ``fp``; return False if the server does not have it."""
        url = self.url + "/" + "/".join(quote(part) for part in relpath)
        with self.session.get(url, timeout=self.timeout, stream=True) as response:
            if response.status_code == 404:
                return False
            response.raise_for_status()
            for chunk in response.iter_content(CHUNK_BYTES):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"download exceeded {self.timeout}s")
                fp.write(chunk)
        return True


class S3Source:
    """An ``s3://bucket/prefix`` holding the Breakpad layout under the prefix."""

    def __init__(self, url, client, timeout):
        parts = urlsplit(url)
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.name = f"s3://{self.bucket}/{self.prefix}"
        self.client = client
        self.timeout = timeout

    def fetch(self, relpath, fp, deadline):
        """Write the object to ``fp``; return False if the key does not exist."""
        key = "/".join(part for part in (self.prefix, *relpath) if part)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return False
            raise
        body = response["Body"]
        try:
            for chunk in body.iter_chunks(CHUNK_BYTES):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"download exceeded {self.timeout}s")
                fp.write(chunk)
        finally:
            body.close()
        return True


class _Remembered:
    """Relpaths remembered for ``ttl`` seconds, at most ``MAX_REMEMBERED`` of them.

    Look-ups take no lock (single dict operations are atomic in CPython), as a
    crash asks about every module it has; only ``add`` rebuilds the dict.
    """

    def __init__(self, ttl, lock):
        self.ttl = ttl
        self._lock = lock
        self._expiry = {}  # relpath -> monotonic expiry

    def __contains__(self, relpath):
        expiry = self._expiry.get(relpath)
        if expiry is None:
            return False
        if expiry > time.monotonic():
            return True
        self._expiry.pop(relpath, None)
        return False

    def add(self, relpath):
        with self._lock:
            if len(self._expiry) >= MAX_REMEMBERED:
                now = time.monotonic()
                self._expiry = {key: exp for key, exp in self._expiry.items() if exp > now}
                if len(self._expiry) >= MAX_REMEMBERED:
                    self._expiry.clear()
            self._expiry[relpath] = time.monotonic() + self.ttl


def parallel_map(function, items, concurrency):
    """Run ``function`` over ``items`` concurrently and return the results.

    gevent greenlets only overlap network waits when sockets are patched;
    otherwise real threads are needed for the downloads to overlap.
    """
    if gevent.monkey.is_module_patched("socket"):
        return list(gevent.pool.Pool(concurrency).imap_unordered(function, items))
    with ThreadPoolExecutor(max_workers=concurrency) as executor:
        return list(executor.map(function, items))


class SymbolsProvider:
    """Local folders plus a bounded cache filled from remote symbol sources."""

    class Config:
        symbols_paths = Option(
            default="",
            parser=comma_list,
            doc="Comma-separated local Breakpad symbol folders.",
        )
        symbols_urls = Option(
            default="",
            parser=comma_list,
            doc=(
                "Comma-separated remote symbol sources in Breakpad layout, tried in order: "
                "HTTP(S) symbol servers (e.g. https://symbols.mozilla.org/try) and "
                "s3://bucket/prefix."
            ),
        )
        symbols_cache = Option(
            default=str(REPO_ROOT / ".cache" / "symbols"),
            doc="Folder where remote symbols are cached (shared safely by processes on a box).",
        )
        symbols_cache_max_bytes = Option(
            default="4294967296",
            parser=int,
            doc="Size bound of the symbols cache; least recently used files are evicted.",
        )
        symbols_miss_ttl = Option(
            default="3600",
            parser=float,
            doc="Seconds a module no source has is remembered (in memory) and not re-asked.",
        )
        symbols_fetch_timeout = Option(
            default="30",
            parser=float,
            doc="Seconds allowed to connect, between bytes, and in total for one symbol file.",
        )
        symbols_fetch_concurrency = Option(
            default="8",
            parser=int,
            doc="Symbol files downloaded in parallel for one crash.",
        )
        symbols_s3_endpoint_url = Option(
            default="",
            doc="S3 endpoint URL for s3:// symbol sources (empty: AWS); e.g. a local moto/minio.",
        )

    def __init__(self, config):
        self.config = config.with_options(self)
        self.local_paths = list(self.config("symbols_paths"))
        self.cache_dir = str(Path(self.config("symbols_cache")))
        os.makedirs(self.cache_dir, exist_ok=True)
        self.max_bytes = self.config("symbols_cache_max_bytes")
        self.miss_ttl = self.config("symbols_miss_ttl")
        self.timeout = self.config("symbols_fetch_timeout")
        self.concurrency = max(1, self.config("symbols_fetch_concurrency"))
        self.sources = self._build_sources(self.config("symbols_urls"))
        self.stats = dict.fromkeys(
            ("hits", "local", "misses", "fetched", "errors", "evictions"), 0
        )
        self._lock = threading.Lock()
        self._missed = _Remembered(self.miss_ttl, self._lock)
        self._local = _Remembered(self.miss_ttl, self._lock)
        self._inflight = {}  # relpath -> lock held while one download runs

    def _build_sources(self, urls):
        sources = []
        session = None
        s3_client = None
        for url in urls:
            if url.startswith("s3://"):
                if s3_client is None:
                    s3_client = boto3.session.Session().client(
                        "s3",
                        endpoint_url=self.config("symbols_s3_endpoint_url") or None,
                        config=botocore.config.Config(
                            connect_timeout=self.timeout,
                            read_timeout=self.timeout,
                            retries={"max_attempts": 2},
                        ),
                    )
                sources.append(S3Source(url, s3_client, self.timeout))
            else:
                if session is None:
                    session = requests.Session()
                    adapter = requests.adapters.HTTPAdapter(
                        pool_maxsize=self.concurrency
                    )
                    session.mount("http://", adapter)
                    session.mount("https://", adapter)
                sources.append(HttpSource(url, session, self.timeout))
        return sources

    def _count(self, name, amount=1):
        with self._lock:
            self.stats[name] += amount

    def prepare(self, modules):
        """Fetch what the modules need and return the symbol folders for the stackwalker.

        ``modules`` are dicts with ``debug_file`` and ``debug_id`` (other keys
        ignored). Returns the local folders followed by the cache folder.
        """
        wanted = dict.fromkeys(
            relpath
            for module in modules
            if (
                relpath := symbol_relpath(
                    module.get("debug_file"), module.get("debug_id")
                )
            )
        )
        keep = set()
        to_fetch = []
        counts = dict.fromkeys(("local", "misses", "hits"), 0)
        for relpath in wanted:
            if relpath in self._local:
                counts["local"] += 1
            elif relpath in self._missed:
                counts["misses"] += 1
            elif any(
                os.path.isfile(os.path.join(folder, *relpath))
                for folder in self.local_paths
            ):
                self._local.add(relpath)
                counts["local"] += 1
            elif self._touch(cached := os.path.join(self.cache_dir, *relpath)):
                counts["hits"] += 1
                keep.add(cached)
            elif not self.sources:
                self._missed.add(relpath)
                counts["misses"] += 1
            else:
                to_fetch.append(relpath)
        for name, amount in counts.items():
            self._count(name, amount)

        if to_fetch:
            results = parallel_map(self._fetch_once, to_fetch, self.concurrency)
            for relpath, outcome in results:
                if outcome in (FETCHED, HIT):
                    keep.add(os.path.join(self.cache_dir, *relpath))
            if any(outcome == FETCHED for _, outcome in results):
                self._evict(keep)
        return [*self.local_paths, self.cache_dir]

    def _touch(self, path):
        """Mark a cached file as recently used; False if it is not cached."""
        try:
            os.utime(path)
        except FileNotFoundError:
            return False
        return True

    def _fetch_once(self, relpath):
        """Download one file unless a concurrent crash in this process just did.

        Returns ``(relpath, outcome)``.
        """
        with self._lock:
            lock = self._inflight.setdefault(relpath, threading.Lock())
        try:
            with lock:
                if self._touch(os.path.join(self.cache_dir, *relpath)):
                    self._count("hits")
                    return relpath, HIT
                if relpath in self._missed:
                    self._count("misses")
                    return relpath, MISS
                outcome = self._fetch(relpath)
        finally:
            with self._lock:
                self._inflight.pop(relpath, None)
        if outcome == MISS:
            self._missed.add(relpath)
            self._count("misses")
        else:
            self._count("fetched" if outcome == FETCHED else "errors")
        return relpath, outcome

    def _fetch(self, relpath):
        """Try each source in order; the first that has the file wins."""
        failed = False
        for source in self.sources:
            try:
                if self._download(source, relpath):
                    return FETCHED
            except (
                requests.RequestException,
                BotoCoreError,
                ClientError,
                OSError,
            ) as exc:
                # Timeouts, refused connections, 5xx, cut transfers: try the next source.
                failed = True
                LOGGER.warning(
                    "symbols: %s from %s failed: %r",
                    "/".join(relpath),
                    source.name,
                    exc,
                )
        return ERROR if failed else MISS

    def _download(self, source, relpath):
        """Fetch into a temporary file and rename it into the cache atomically."""
        destination = os.path.join(self.cache_dir, *relpath)
        folder, name = os.path.split(destination)
        os.makedirs(folder, exist_ok=True)
        fd, tmp_path = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as fp:
                found = source.fetch(relpath, fp, time.monotonic() + self.timeout)
            if found:
                os.replace(tmp_path, destination)
                tmp_path = None
            return found
        finally:
            if tmp_path is not None:
                os.unlink(tmp_path)

    def _evict(self, keep):
        """Remove least recently used files until the cache fits its bound."""
        entries = []
        total = 0
        stale_before = time.time() - STALE_TMP_SECONDS
        for dirpath, _dirnames, filenames in os.walk(self.cache_dir):
            for filename in filenames:
                path = os.path.join(dirpath, filename)
                try:
                    stat = os.stat(path)
                    if filename.endswith(".tmp") and stat.st_mtime < stale_before:
                        os.unlink(path)
                        continue
                except FileNotFoundError:
                    continue
                total += stat.st_size
                if not filename.endswith(".tmp") and path not in keep:
                    entries.append((stat.st_mtime, path, stat.st_size))
        entries.sort()
        for _mtime, path, size in entries:
            if total <= self.max_bytes:
                break
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass  # another process evicted it first
            total -= size
            self._count("evictions")
