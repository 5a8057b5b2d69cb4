"""Keep-alive HTTP/1.1 load generator: one process, gevent, raw sockets, pre-encoded requests.

Run by ``bench.collector_bench`` as a separate process so that the client never shares
an interpreter (or a GIL) with the server under test::

    python -m bench.loadgen --port 8000 --requests reqs.bin --concurrency 32 \
        --seconds 10 --warmup 1 --out result.json [--rate 300]

``reqs.bin`` holds complete request byte strings (request line, headers, body),
length-prefixed; connection ``i`` sends them round-robin.  Each connection sends a
request, reads the whole response (status line, headers, ``Content-Length`` body)
and sends the next one: a closed loop, or paced to ``--rate`` requests/s in total.

Protocol with the parent on stdout: ``READY`` once connected, ``MEASURE_START`` when
the warm-up ends, ``MEASURE_END`` when the measured window ends (the parent samples
server CPU and memory between the two), then ``DONE``.  Every request completed in the
measured window is recorded in ``--out`` as ``[status, latency_ms]`` (status 0 on a
socket error or timeout).  Loops are bounded by ``--seconds`` and ``--max-requests``.
"""

import argparse
import json
import os
import struct
import sys
import time

import gevent
import gevent.socket as gsocket

MAX_HEADER = 64 * 1024


def load_requests(path):
    out = []
    with open(path, "rb") as fp:
        data = fp.read()
    offset = 0
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        offset += 4
        out.append(data[offset : offset + length])
        offset += length
    return out


def save_requests(path, requests):
    with open(path, "wb") as fp:
        for req in requests:
            fp.write(struct.pack(">I", len(req)))
            fp.write(req)


def encode_request(host, port, path, headers, body):
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "User-Agent: bench-loadgen/1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    """One keep-alive connection with a receive buffer."""

    def __init__(self, host, port, timeout):
        self.host, self.port, self.timeout = host, port, timeout
        self.sock = None
        self.buf = bytearray()

    def connect(self):
        self.close()
        self.sock = gsocket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock.setsockopt(gsocket.IPPROTO_TCP, gsocket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def request(self, data):
        """Send one request, read one response; return (status, keep_alive)."""
        if self.sock is None:
            self.connect()
        self.sock.sendall(data)
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self.buf) > MAX_HEADER:
                raise ConnectionError("response header too large")
            self._fill()
        head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        del self.buf[: end + 4]
        parts = head[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ConnectionError(f"bad status line {head[0]!r}")
        status = int(parts[1])
        length = None
        keep_alive = parts[0] == "HTTP/1.1"
        for line in head[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "connection":
                token = value.strip().lower()
                keep_alive = token == "keep-alive" or (keep_alive and token != "close")
            elif name == "transfer-encoding" and "chunked" in value.lower():
                raise ConnectionError("chunked responses are not supported")
        if length is None:
            # No length: the body runs to the end of the connection.
            try:
                while True:
                    self._fill()
            except ConnectionError:
                pass
            self.buf = bytearray()
            return status, False
        while len(self.buf) < length:
            self._fill()
        del self.buf[:length]
        return status, keep_alive


def run(args):
    requests = load_requests(args.requests)
    results = []
    state = {"measuring": False, "stop": False, "sent": 0}
    all_statuses = {}
    start = time.monotonic()
    measure_start = start + args.warmup
    deadline = measure_start + args.seconds
    interval = (1.0 / args.rate) if args.rate else 0.0

    def worker(index):
        conn = Connection(args.host, args.port, args.timeout)
        n = index
        while not state["stop"]:
            if state["sent"] >= args.max_requests:
                return
            seq = state["sent"]
            state["sent"] += 1
            if interval:
                wait = start + seq * interval - time.monotonic()
                if wait > 0:
                    gevent.sleep(wait)
                if state["stop"]:
                    return
            data = requests[n % len(requests)]
            n += args.concurrency
            t0 = time.monotonic()
            try:
                status, keep_alive = conn.request(data)
            except (OSError, ConnectionError, ValueError):
                status, keep_alive = 0, False
            t1 = time.monotonic()
            all_statuses[status] = all_statuses.get(status, 0) + 1
            if not keep_alive:
                conn.close()
            if state["measuring"] and t1 <= deadline:
                results.append((status, (t1 - t0) * 1000.0))
            if status == 0:
                gevent.sleep(0.01)
        conn.close()

    print("READY", flush=True)
    greenlets = [gevent.spawn(worker, i) for i in range(args.concurrency)]
    gevent.sleep(max(0.0, measure_start - time.monotonic()))
    state["measuring"] = True
    cpu0 = os.times()
    print("MEASURE_START", flush=True)
    gevent.sleep(max(0.0, deadline - time.monotonic()))
    state["measuring"] = False
    cpu1 = os.times()
    print("MEASURE_END", flush=True)
    state["stop"] = True
    gevent.joinall(greenlets, timeout=args.timeout + 5)
    gevent.killall([g for g in greenlets if not g.dead], timeout=2)
    loadgen_cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / args.seconds
    with open(args.out, "w") as fp:
        json.dump(
            {
                "seconds": args.seconds,
                "loadgen_cpu": loadgen_cpu,
                "all_statuses": {str(k): v for k, v in all_statuses.items()},
                "results": results,
            },
            fp,
        )
    print("DONE", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--requests", required=True, help="file of length-prefixed requests")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=0.0, help="total req/s (0: closed loop)")
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("loadgen only targets the loopback interface")
    run(args)


if __name__ == "__main__":
    main()
