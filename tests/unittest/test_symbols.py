"""SymbolsProvider against real servers on 127.0.0.1: an HTTP symbol server and moto S3."""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import boto3
import pytest
from everett.manager import ConfigManager

from processor.minidump_modules import parse_modules
from processor.symbols import SymbolsProvider, symbol_relpath

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS = REPO_ROOT.parent / "shared" / "corpus"
needs_corpus = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"minidump corpus not found at {CORPUS}"
)

SEGV_DUMP = CORPUS / "generated" / "breakpad_segv.dmp"
CRASH_BP = ("crash_bp", "8C180107341C9E7344CA580F2736ADC00", "crash_bp.sym")


class SymbolServer(ThreadingHTTPServer):
    """Serves ``root`` in Breakpad layout; counts requests; can stall or cut answers."""

    def __init__(self, root):
        super().__init__(("127.0.0.1", 0), SymbolHandler)
        self.root = root
        self.hits = Counter()
        self.lock = threading.Lock()
        self.delay = 0.0
        self.hang = False
        self.release = threading.Event()
        self.truncate = False
        self.status = None
        self.active = 0
        self.max_active = 0

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def count(self, relpath):
        return self.hits["/" + "/".join(relpath)]


class SymbolHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        with server.lock:
            server.hits[self.path] += 1
            server.active += 1
            server.max_active = max(server.max_active, server.active)
        try:
            self.answer(server)
        finally:
            with server.lock:
                server.active -= 1

    def answer(self, server):
        if server.hang:
            server.release.wait(10)
            return
        time.sleep(server.delay)
        if server.status:
            self.send_error(server.status)
            return
        path = server.root / unquote(self.path.lstrip("/"))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2] if server.truncate else data)

    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    """A symbol server over a copy of the corpus' generated/ symbols, plus synthetic modules."""
    root = tmp_path / "served"
    if CORPUS.is_dir():
        shutil.copytree(CORPUS / "generated" / "symbols", root)
    for name in "abcdef":
        folder = root / f"lib{name}.so" / f"{name.upper() * 32}0"
        folder.mkdir(parents=True)
        (folder / f"lib{name}.so.sym").write_bytes(name.encode() * 1000)
    server = SymbolServer(root)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def synthetic(names):
    return [
        {"debug_file": f"lib{n}.so", "debug_id": f"{n.upper() * 32}0"} for n in names
    ]


def provider(tmp_path, **options):
    values = {"PROCESSOR_SYMBOLS_CACHE": str(tmp_path / "cache")}
    values.update(
        {
            f"PROCESSOR_SYMBOLS_{key.upper()}": str(value)
            for key, value in options.items()
        }
    )
    return SymbolsProvider(ConfigManager.from_dict(values).with_namespace("processor"))


def cache_files(tmp_path):
    return sorted(
        str(p.relative_to(tmp_path / "cache"))
        for p in (tmp_path / "cache").rglob("*")
        if p.is_file()
    )


def test_symbol_relpath():
    assert symbol_relpath("test_app.pdb", "5A98") == (
        "test_app.pdb",
        "5A98",
        "test_app.sym",
    )
    assert symbol_relpath("XUL.PDB", "AB0") == ("XUL.PDB", "AB0", "XUL.sym")
    assert symbol_relpath("libc.so.6", "EC61") == ("libc.so.6", "EC61", "libc.so.6.sym")
    for debug_file, debug_id in [
        ("..", "AB"),
        ("a/b", "AB"),
        ("a\\b", "AB"),
        ("", "AB"),
        ("x", "../A"),
        ("x", ""),
        (None, "A"),
    ]:
        assert symbol_relpath(debug_file, debug_id) is None


@needs_corpus
def test_miss_then_hit_and_remembered_misses(tmp_path, served):
    modules = parse_modules(SEGV_DUMP.read_bytes())
    symbols = provider(tmp_path, urls=served.url)
    dirs = symbols.prepare(modules)
    assert dirs == [str(tmp_path / "cache")]
    expected = (CORPUS / "generated" / "symbols").joinpath(*CRASH_BP).read_bytes()
    assert (tmp_path / "cache").joinpath(*CRASH_BP).read_bytes() == expected
    assert symbols.stats["fetched"] == 1
    assert symbols.stats["misses"] == len(modules) - 1

    symbols.prepare(modules)
    assert symbols.stats["hits"] == 1
    assert symbols.stats["fetched"] == 1
    # Every path was asked exactly once: the hit came from the cache and the
    # 404s were remembered.
    assert set(served.hits.values()) == {1}
    assert len(served.hits) == len(modules)


@needs_corpus
def test_miss_forgotten_after_ttl(tmp_path, served):
    missing = [{"debug_file": "nothere.so", "debug_id": "0" * 33}]
    symbols = provider(tmp_path, urls=served.url, miss_ttl=0)
    symbols.prepare(missing)
    symbols.prepare(missing)
    assert served.count(("nothere.so", "0" * 33, "nothere.so.sym")) == 2


@needs_corpus
def test_local_paths_win(tmp_path, served):
    local = str(CORPUS / "generated" / "symbols")
    symbols = provider(tmp_path, urls=served.url, paths=f"{local}, ")
    dirs = symbols.prepare(parse_modules(SEGV_DUMP.read_bytes()))
    assert dirs == [local, str(tmp_path / "cache")]
    assert symbols.stats["local"] == 1
    assert served.count(CRASH_BP) == 0


def test_lru_eviction(tmp_path, served):
    symbols = provider(tmp_path, urls=served.url, cache_max_bytes=2500)
    for names in ("a", "b", "a", "c"):  # the second "a" is a hit that refreshes it
        symbols.prepare(synthetic(names))
        time.sleep(0.02)
    assert cache_files(tmp_path) == [
        "liba.so/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA0/liba.so.sym",
        "libc.so/CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC0/libc.so.sym",
    ]
    assert symbols.stats["evictions"] == 1
    # What the current crash needs stays even when it alone exceeds the bound.
    symbols.prepare(synthetic("def"))
    assert len(cache_files(tmp_path)) == 3
    assert all(
        name.split("/")[0] in ("libd.so", "libe.so", "libf.so")
        for name in cache_files(tmp_path)
    )


def test_timeout_on_hanging_server(tmp_path, served):
    served.hang = True
    symbols = provider(tmp_path, urls=served.url, fetch_timeout=0.5)
    started = time.monotonic()
    symbols.prepare(synthetic("ab"))
    assert time.monotonic() - started < 2
    assert symbols.stats["errors"] == 2
    assert cache_files(tmp_path) == []
    # Errors are not remembered: once the server answers, the next crash gets them.
    served.hang = False
    symbols.prepare(synthetic("ab"))
    assert symbols.stats["fetched"] == 2


def test_parallel_fetch(tmp_path, served):
    served.delay = 0.3
    symbols = provider(tmp_path, urls=served.url, fetch_concurrency=6)
    started = time.monotonic()
    symbols.prepare(synthetic("abcdef"))
    elapsed = time.monotonic() - started
    assert symbols.stats["fetched"] == 6
    assert served.max_active >= 4
    assert elapsed < 1.0, elapsed  # serial would take 1.8 s


def test_parallel_fetch_with_gevent_monkey_patching(tmp_path, served):
    """The processor process is monkey-patched: the gevent pool must overlap fetches."""
    served.delay = 0.3
    script = f"""
from gevent import monkey; monkey.patch_all()
import json, time
from everett.manager import ConfigManager
from processor.symbols import SymbolsProvider
config = ConfigManager.from_dict({{
    "PROCESSOR_SYMBOLS_URLS": "{served.url}",
    "PROCESSOR_SYMBOLS_CACHE": "{tmp_path / "cache"}",
    "PROCESSOR_SYMBOLS_FETCH_CONCURRENCY": "6",
}}).with_namespace("processor")
symbols = SymbolsProvider(config)
modules = [{{"debug_file": f"lib{{n}}.so", "debug_id": f"{{n.upper() * 32}}0"}} for n in "abcdef"]
started = time.monotonic()
symbols.prepare(modules)
print(json.dumps({{"elapsed": time.monotonic() - started, "stats": symbols.stats}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["stats"]["fetched"] == 6
    assert result["elapsed"] < 1.0, result


def test_truncated_transfer_leaves_nothing(tmp_path, served):
    served.truncate = True
    symbols = provider(tmp_path, urls=served.url)
    symbols.prepare(synthetic("a"))
    assert symbols.stats["errors"] == 1
    assert cache_files(tmp_path) == []  # neither a half .sym nor a leftover .tmp


def test_concurrent_processors_share_cache(tmp_path, served):
    """Two providers (two processes) racing on one module both end with the whole file."""
    served.delay = 0.2
    first, second = (
        provider(tmp_path, urls=served.url),
        provider(tmp_path, urls=served.url),
    )
    threads = [
        threading.Thread(target=p.prepare, args=(synthetic("a"),))
        for p in (first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache_files(tmp_path) == [
        "liba.so/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA0/liba.so.sym"
    ]
    assert (tmp_path / "cache" / cache_files(tmp_path)[0]).read_bytes() == b"a" * 1000


def test_failed_source_falls_through_to_next(tmp_path, served):
    broken = SymbolServer(served.root)
    broken.status = 503
    thread = threading.Thread(target=broken.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        symbols = provider(tmp_path, urls=f"{broken.url},{served.url}")
        symbols.prepare(synthetic("a"))
    finally:
        broken.shutdown()
        broken.server_close()
    assert symbols.stats["fetched"] == 1
    assert broken.hits and served.hits


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def s3_endpoint(monkeypatch):
    from moto.server import ThreadedMotoServer

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@needs_corpus
def test_s3_source(tmp_path, s3_endpoint):
    sym = (CORPUS / "generated" / "symbols").joinpath(*CRASH_BP).read_bytes()
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket="symbols")
    s3.put_object(Bucket="symbols", Key="v1/" + "/".join(CRASH_BP), Body=sym)

    symbols = provider(tmp_path, urls="s3://symbols/v1", s3_endpoint_url=s3_endpoint)
    modules = parse_modules(SEGV_DUMP.read_bytes())
    symbols.prepare(modules)
    assert (tmp_path / "cache").joinpath(*CRASH_BP).read_bytes() == sym
    assert symbols.stats["fetched"] == 1
    assert symbols.stats["misses"] == len(modules) - 1
    assert symbols.stats["errors"] == 0
    symbols.prepare(modules)
    assert symbols.stats["hits"] == 1
    assert os.path.isdir(tmp_path / "cache")


def test_local_hits_and_sourceless_misses_remembered(tmp_path, monkeypatch):
    local = tmp_path / "local"
    local.joinpath("a.so", "AA", "a.so.sym").parent.mkdir(parents=True)
    local.joinpath("a.so", "AA", "a.so.sym").write_text("MODULE")
    modules = [{"debug_file": "a.so", "debug_id": "AA"}, {"debug_file": "b.so", "debug_id": "BB"}]
    symbols = provider(tmp_path, paths=str(local))
    symbols.prepare(modules)
    assert symbols.stats["local"] == 1 and symbols.stats["misses"] == 1

    def no_file_system(*args):
        raise AssertionError("a remembered module must not touch the file system")

    monkeypatch.setattr(os.path, "isfile", no_file_system)
    monkeypatch.setattr(symbols, "_touch", no_file_system)
    symbols.prepare(modules)
    assert symbols.stats["local"] == 2 and symbols.stats["misses"] == 2
