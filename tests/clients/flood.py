"""Connections that never log in, against `srbackup serve`, while normal clients work (PyMySQL).

Run by tests/hostile.rs (and scripts/soak) against a server on 127.0.0.1: one thread opens
--flood TCP connections as fast as it can and never sends a byte (some send half a handshake
and stop: --slow of them), keeping every socket open; meanwhile --clients PyMySQL connections
each log in and run --statements statements, checking every answer. A sampler reads the
server's open file descriptors and resident memory from /proc every 20 ms.

Prints one JSON line: {"flood_opened", "flood_refused", "clients_ok", "clients_failed",
"statements", "errors", "max_fds", "max_rss_kib", "seconds"}. Bounded: --seconds at most.
"""

import argparse
import json
import os
import resource
import socket
import struct
import threading
import time

import pymysql

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--password", default="")
parser.add_argument("--pid", type=int, required=True, help="the server's process id")
parser.add_argument("--flood", type=int, default=5000)
parser.add_argument("--slow", type=int, default=200)
parser.add_argument("--clients", type=int, default=32)
parser.add_argument("--statements", type=int, default=20)
parser.add_argument("--seconds", type=float, default=120)
args = parser.parse_args()

# This process holds every flood socket: raise its own descriptor limit to the hard limit.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

deadline = time.monotonic() + args.seconds
stop = threading.Event()
peak = {"fds": 0, "rss": 0}


def sample():
    while not stop.is_set():
        try:
            fds = len(os.listdir(f"/proc/{args.pid}/fd"))
            with open(f"/proc/{args.pid}/status") as f:
                rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
            peak["fds"] = max(peak["fds"], fds)
            peak["rss"] = max(peak["rss"], rss)
        except (OSError, StopIteration):
            pass
        time.sleep(0.02)


held = []
flood = {"opened": 0, "refused": 0}


def half_handshake(s):
    """Reads the greeting and sends the start of a handshake response, then stops."""
    try:
        s.settimeout(2)
        s.recv(4096)
        payload = struct.pack("<IIB23x", 0x000FA685, 1 << 24, 33) + b"root\0"
        s.sendall(struct.pack("<I", len(payload) + 40)[:3] + b"\x01" + payload)
    except OSError:
        pass


def do_flood():
    for i in range(args.flood):
        if time.monotonic() > deadline:
            break
        try:
            s = socket.create_connection(("127.0.0.1", args.port), timeout=2)
            if i < args.slow:
                half_handshake(s)
            held.append(s)
            flood["opened"] += 1
        except OSError:
            flood["refused"] += 1


results = {"ok": 0, "failed": 0, "statements": 0, "errors": []}
lock = threading.Lock()


def client(n):
    conn = None
    for attempt in range(10):
        try:
            conn = pymysql.connect(host="127.0.0.1", port=args.port, user="root",
                                   password=args.password, connect_timeout=10,
                                   read_timeout=30, write_timeout=30)
            break
        except pymysql.err.OperationalError as e:
            # Connecting during a flood may take a retry, as with any busy server.
            last = e
            time.sleep(0.05 * (attempt + 1))
    if conn is None:
        with lock:
            results["failed"] += 1
            results["errors"].append(f"client {n}: could not connect: {last}")
        return
    try:
        with conn.cursor() as cur:
            for i in range(args.statements):
                cur.execute(f"SELECT {n} * 1000 + {i}")
                got = cur.fetchone()[0]
                if int(got) != n * 1000 + i:
                    raise AssertionError(f"client {n}: SELECT gave {got}")
                cur.execute("SHOW DATABASES")
                cur.fetchall()
                with lock:
                    results["statements"] += 2
        with lock:
            results["ok"] += 1
    except Exception as e:  # noqa: BLE001 - every failure is reported
        with lock:
            results["failed"] += 1
            results["errors"].append(f"client {n}: {e!r}")
    finally:
        conn.close()


started = time.monotonic()
sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
flooder = threading.Thread(target=do_flood)
flooder.start()
# The normal clients start once the flood is under way.
while flood["opened"] < min(500, args.flood) and flooder.is_alive():
    time.sleep(0.01)
clients = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
for t in clients:
    t.start()
for t in clients:
    t.join(max(0.1, deadline - time.monotonic()))
flooder.join(max(0.1, deadline - time.monotonic()))
time.sleep(0.2)
stop.set()
sampler.join()
for s in held:
    s.close()
print(json.dumps({
    "flood_opened": flood["opened"],
    "flood_refused": flood["refused"],
    "clients_ok": results["ok"],
    "clients_failed": results["failed"],
    "statements": results["statements"],
    "errors": results["errors"][:5],
    "max_fds": peak["fds"],
    "max_rss_kib": peak["rss"],
    "seconds": round(time.monotonic() - started, 2),
}))
