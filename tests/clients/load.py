"""Many connections at once against `srbackup serve` while backups run (PyMySQL).

Builds the sr_hub fixture through the server, then: one connection backs sr_hub up again and
again; `--connections` others each send `--statements` statements (SHOW BACKUP, SELECT,
SHOW TABLES, CHECKSUM TABLE on sr_hub; every fourth connection INSERTs rows with unique keys
into loaddb.events). At the end the last backup is restored under a new name and compared
with its source, and the inserted rows are counted.

Prints one line (what tests/serve.rs and scripts/load read):
load: connections=32 statements=1280 seconds=4.1 statements_per_s=310 errors=0 lost_rows=0 backups=5 backup_equal=true
"""

import argparse
import threading
import time

import pymysql

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--user", default="root")
parser.add_argument("--password", default="")
parser.add_argument("--connections", type=int, default=32)
parser.add_argument("--statements", type=int, default=40, help="per connection")
parser.add_argument("--fixture", required=True)
parser.add_argument("--repo", required=True)
args = parser.parse_args()

TABLES = ["sr_member", "sr_pmc", "sr_event", "sr_region", "sr_mv1", "sr_mv2"]


def connect():
    return pymysql.connect(
        host="127.0.0.1", port=args.port, user=args.user, password=args.password, autocommit=True
    )


def statements(text):
    """Splits a SQL script at `;` outside quotes, dropping `--` comments."""
    out, cur, quote, i = [], [], None, 0
    while i < len(text):
        c = text[i]
        if quote:
            cur.append(c)
            if c == quote:
                quote = None
        elif c in "'\"`":
            quote = c
            cur.append(c)
        elif text.startswith("--", i):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        elif c == ";":
            s = "".join(cur).strip()
            if s:
                out.append(s)
            cur = []
        else:
            cur.append(c)
        i += 1
    s = "".join(cur).strip()
    if s:
        out.append(s)
    return out


def query(conn, sql):
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute(sql)
        return cur.fetchall()


def checksums(conn, db):
    return [query(conn, f"CHECKSUM TABLE {db}.{t}")[0]["Checksum"] for t in TABLES]


def wait(conn, kind, db, label):
    name = "SnapshotName" if kind == "BACKUP" else "Label"
    while True:
        for r in query(conn, f"SHOW {kind} FROM {db}"):
            if r[name] == label and r["State"] in ("FINISHED", "CANCELLED"):
                return r["State"]
        time.sleep(0.02)


setup = connect()
with open(args.fixture) as f:
    for s in statements(f.read()):
        query(setup, s)
query(setup, f'CREATE REPOSITORY load_repo WITH BROKER ON LOCATION "{args.repo}"')
query(setup, "CREATE DATABASE loaddb")
query(
    setup,
    "CREATE TABLE loaddb.events (id BIGINT, conn INT, v VARCHAR(20)) DUPLICATE KEY(id) DISTRIBUTED BY HASH(id) BUCKETS 4",
)
source = checksums(setup, "sr_hub")

READS = [
    "SHOW BACKUP FROM sr_hub",
    "SELECT count(*) AS n FROM sr_hub.sr_member",
    "SHOW TABLES FROM sr_hub",
    "SELECT city_code, verified_members FROM sr_hub.sr_view2 ORDER BY city_code",
    "CHECKSUM TABLE sr_hub.sr_pmc",
    "SHOW SNAPSHOT ON load_repo",
]
lock = threading.Lock()
totals = {"statements": 0, "errors": 0, "inserted": 0}
errors = []
running = threading.Event()
running.set()


def client(n):
    try:
        conn = connect()
    except Exception as e:  # noqa: BLE001 - every failure counts
        with lock:
            totals["errors"] += 1
            errors.append(f"connect {n}: {e!r}")
        return
    done = failed = inserted = 0
    for i in range(args.statements):
        try:
            if n % 4 == 0:
                query(conn, f"INSERT INTO loaddb.events VALUES ({n * 1_000_000 + i}, {n}, 'x')")
                inserted += 1
            else:
                query(conn, READS[(n + i) % len(READS)])
            done += 1
        except Exception as e:  # noqa: BLE001
            failed += 1
            with lock:
                errors.append(f"connection {n}: {e!r}")
    conn.close()
    with lock:
        totals["statements"] += done
        totals["errors"] += failed
        totals["inserted"] += inserted


# Backups, one after another, for as long as the clients run.
backups = []


def backer():
    while running.is_set():
        label = f"load_{len(backups) + 1}"
        try:
            query(setup, f"BACKUP DATABASE sr_hub SNAPSHOT {label} TO load_repo")
            backups.append((label, wait(setup, "BACKUP", "sr_hub", label)))
        except Exception as e:  # noqa: BLE001
            with lock:
                totals["errors"] += 1
                errors.append(f"backup {label}: {e!r}")
            return


threads = [threading.Thread(target=client, args=(n,)) for n in range(args.connections)]
backup_thread = threading.Thread(target=backer)
started = time.monotonic()
backup_thread.start()
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.monotonic() - started
running.clear()
backup_thread.join()

finished = [label for label, state in backups if state == "FINISHED"]
equal = False
if finished:
    label = finished[-1]
    query(setup, f"RESTORE SNAPSHOT {label} FROM load_repo DATABASE sr_hub AS sr_hub_copy")
    wait(setup, "RESTORE", "sr_hub_copy", label)
    equal = checksums(setup, "sr_hub_copy") == source
stored = query(setup, "SELECT count(*) AS n FROM loaddb.events")[0]["n"]
for e in errors[:10]:
    print("error:", e)
print(
    f"load: connections={args.connections} statements={totals['statements']} "
    f"seconds={elapsed:.1f} statements_per_s={totals['statements'] / elapsed:.0f} "
    f"errors={totals['errors']} lost_rows={totals['inserted'] - stored} "
    f"backups={len(finished)} backup_equal={'true' if equal else 'false'}",
    flush=True,
)
