"""StarRocks' asynchronous job model through a second MySQL driver (PyMySQL).

Run by tests/serve.rs against `srbackup serve` on 127.0.0.1, with a cluster whose
srbackup.conf holds `user.admin = <hash of --password>` and a slow upload rate, so that a
backup of the `big` database takes seconds:

- a wrong password is refused;
- BACKUP returns once the job is accepted; SHOW BACKUP polled until FINISHED;
- two jobs on two databases run at once; a second job on one database is refused;
- CANCEL BACKUP from a second connection stops a running backup;
- a client that goes away in the middle of a statement leaves it done whole.
Prints one line per check; exits non-zero on the first failure.
"""

import argparse
import sys
import time

import pymysql

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--user", default="admin")
parser.add_argument("--password", required=True)
parser.add_argument("--repo", required=True)
args = parser.parse_args()


def connect(**kw):
    return pymysql.connect(
        host="127.0.0.1",
        port=args.port,
        user=args.user,
        password=args.password,
        autocommit=True,
        **kw,
    )


def rows(conn, sql):
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute(sql)
        return cur.fetchall()


def run(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.rowcount


def job(conn, kind, db, label):
    """The newest job of `db` if it has this label (SHOW BACKUP shows one per database)."""
    for r in rows(conn, f"SHOW {kind} FROM {db}"):
        if r["SnapshotName"] == label:
            return r
    return None


def wait(conn, kind, db, label, states, limit=120):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        j = job(conn, kind, db, label)
        if j and j["State"] in states:
            return j
        time.sleep(0.05)
    raise AssertionError(f"{kind} {label} on {db} never reached {states}: {job(conn, kind, db, label)}")


def check(what, condition, detail=""):
    if not condition:
        print(f"FAILED: {what} {detail}", flush=True)
        sys.exit(1)
    print(f"ok: {what}", flush=True)


# A wrong password is refused, with MySQL's access-denied error.
try:
    pymysql.connect(host="127.0.0.1", port=args.port, user=args.user, password="wrong")
    check("a wrong password is refused", False)
except pymysql.err.OperationalError as e:
    check("a wrong password is refused", e.args[0] in (1045, 1698), repr(e))
try:
    pymysql.connect(host="127.0.0.1", port=args.port, user="nobody", password="")
    check("an unknown user is refused", False)
except pymysql.err.OperationalError as e:
    check("an unknown user is refused", e.args[0] in (1045, 1698), repr(e))

a = connect()
b = connect()
run(a, f'CREATE REPOSITORY r WITH BROKER ON LOCATION "{args.repo}"')
for db in ("small", "big"):
    run(a, f"CREATE DATABASE {db}")
run(a, "CREATE TABLE small.t (k INT, v VARCHAR(20)) DUPLICATE KEY(k) DISTRIBUTED BY HASH(k) BUCKETS 1")
check("INSERT reports the rows it wrote", run(a, "INSERT INTO small.t VALUES (1, 'one'), (2, 'two')") == 2)
run(a, "CREATE TABLE big.t (k BIGINT, v VARCHAR(40)) DUPLICATE KEY(k) DISTRIBUTED BY HASH(k) BUCKETS 4")
run(
    a,
    "INSERT INTO big.t SELECT value, concat('row-', CAST(value * 2654435761 % 4294967291 AS VARCHAR)) "
    "FROM generate_series(1, 200000)",
)
count = rows(a, "SELECT count(*) AS n FROM big.t")[0]["n"]
check("typed results: count(*) arrives as an integer", count == 200000 and isinstance(count, int), repr(count))

# A large result comes through whole (the server streams it batch by batch).
with a.cursor() as cur:
    cur.execute("SELECT k, v FROM big.t ORDER BY k")
    keys = [r[0] for r in cur.fetchall()]
check("200,000 rows stream through in order", keys == list(range(1, 200001)), f"{len(keys)} rows")

# BACKUP returns once accepted; the job is visible at once and finishes on its own.
run(a, "BACKUP DATABASE small SNAPSHOT s1 TO r")
j = job(b, "BACKUP", "small", "s1")
check("an accepted BACKUP is listed by SHOW BACKUP from another connection", j is not None)
j = wait(b, "BACKUP", "small", "s1", ("FINISHED", "CANCELLED"))
check("the backup finishes", j["State"] == "FINISHED", repr(j))

# Two databases, two jobs at once; a second job on one database is refused.
run(a, "BACKUP DATABASE big SNAPSHOT b1 TO r")
run(b, "BACKUP DATABASE small SNAPSHOT s2 TO r")
try:
    run(b, "BACKUP DATABASE big SNAPSHOT b2 TO r")
    check("a second job on one database is refused", False)
except pymysql.err.MySQLError as e:
    check("a second job on one database is refused", "Can only run one backup or restore job of a database at same time" in str(e), repr(e))
j = wait(b, "BACKUP", "small", "s2", ("FINISHED", "CANCELLED"))
big = job(b, "BACKUP", "big", "b1")
check(
    "a job on another database finishes while the slow one runs",
    j["State"] == "FINISHED" and big["State"] not in ("FINISHED", "CANCELLED"),
    f"{j['State']} / {big['State']}",
)

# CANCEL from a second connection stops the running backup.
wait(a, "BACKUP", "big", "b1", ("UPLOADING",))
run(b, "CANCEL BACKUP FROM big")
j = wait(a, "BACKUP", "big", "b1", ("FINISHED", "CANCELLED"))
check("CANCEL BACKUP from another connection stops the job", j["State"] == "CANCELLED", repr(j))
snapshots = {r["Snapshot"] for r in rows(a, "SHOW SNAPSHOT ON r")}
check("the cancelled backup left no snapshot", "b1" not in snapshots and {"s1", "s2"} <= snapshots, repr(snapshots))

# A client that goes away mid-statement: the statement still runs whole.
run(a, "CREATE TABLE big.copy (k BIGINT, v VARCHAR(40)) DUPLICATE KEY(k) DISTRIBUTED BY HASH(k) BUCKETS 4")
quitter = connect(read_timeout=0.05)
try:
    run(quitter, "INSERT INTO big.copy SELECT * FROM big.t")
    gone = False
except pymysql.err.OperationalError:
    gone = True
quitter.close()
deadline = time.monotonic() + 60
n = None
while time.monotonic() < deadline:
    n = rows(a, "SELECT count(*) AS n FROM big.copy")[0]["n"]
    if n == 200000:
        break
    check("a half-done load is never visible", n == 0, repr(n))
    time.sleep(0.1)
check(
    f"a statement whose client went away {'mid-way ' if gone else ''}ran whole",
    n == 200000,
    repr(n),
)
sums = rows(a, "CHECKSUM TABLE big.t, big.copy")
check("and its rows are the source's", sums[0]["Checksum"] == sums[1]["Checksum"], repr(sums))
print("all checks passed", flush=True)
