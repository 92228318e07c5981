"""starrocks-br 0.6.0 (PyPI, unmodified) against `srbackup serve` over the sr_hub fixture.

Run by tests/clients.rs with the server's port, root's password, a work directory and the
`starrocks-br` executable. The tool talks to the server through mysql-connector-python's C
extension; this script checks what it did with PyMySQL:

1. `init` creates the ops schema and its inventory;
2. `backup full --group all` (the four tables), then `backup full --group pair` (two);
3. a row is inserted into one partition (sr_member p2);
4. `backup incremental --group pair` backs up only that partition;
5. `restore --table sr_pmc` of the first full backup brings back its rows (a row added since
   goes);
6. `restore --target-label <full>`: its rename swap finishes and the live tables hold the
   snapshot's rows;
7. `restore --target-label <incremental>`: the base full backup, then the incremental on top:
   the live sr_member holds the snapshot's rows and the inserted one;
8. the ops history tables say what happened.

Prints one line per check; exits non-zero on the first failure.
"""

import argparse
import os
import subprocess
import sys
import time

import pymysql

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--password", required=True)
parser.add_argument("--dir", required=True)
parser.add_argument("--br", required=True, help="the starrocks-br executable")
args = parser.parse_args()

config = os.path.join(args.dir, "starrocks-br.yaml")
with open(config, "w") as f:
    f.write(
        f"""host: 127.0.0.1
port: {args.port}
user: root
database: sr_hub
repository: test_repo
table_inventory:
  - group: all
    tables:
      - {{database: sr_hub, table: sr_member}}
      - {{database: sr_hub, table: sr_pmc}}
      - {{database: sr_hub, table: sr_event}}
      - {{database: sr_hub, table: sr_region}}
  - group: pair
    tables:
      - {{database: sr_hub, table: sr_member}}
      - {{database: sr_hub, table: sr_pmc}}
"""
    )


def fail(message):
    print("FAIL " + message)
    sys.exit(1)


def ok(message):
    print("ok   " + message)


def br(*argv):
    env = dict(os.environ, STARROCKS_PASSWORD=args.password)
    cmd = [args.br, *argv, "--config", config]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        fail(f"starrocks-br {' '.join(argv)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}")
    ok(f"starrocks-br {' '.join(argv)}")
    return out.stdout + out.stderr


def query(sql):
    conn = pymysql.connect(host="127.0.0.1", port=args.port, user="root",
                           password=args.password, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def one(sql):
    return query(sql)[0][0]


def expect(name, got, want):
    if got != want:
        fail(f"{name}: got {got!r}, want {want!r}")
    ok(f"{name}: {want!r}")


def labels(kind):
    return [r[0] for r in query(
        f"SELECT label FROM ops.backup_history WHERE backup_type = '{kind}' AND status = 'FINISHED' ORDER BY finished_at, label")]


# 1. init
br("init")
expect("ops has the five tables", len(query("SHOW TABLES FROM ops")), 5)
expect("the inventory", one("SELECT count(*) FROM ops.table_inventory"), 6)
members = one("SELECT count(*) FROM sr_hub.sr_member")
pmcs = one("SELECT count(*) FROM sr_hub.sr_pmc")

# 2. full backups
br("backup", "full", "--group", "all")
time.sleep(1.1)
br("backup", "full", "--group", "pair")
fulls = labels("full")
expect("two full backups recorded", len(fulls), 2)
full_all, full_pair = fulls
expect("the second full backup's partitions", sorted(query(
    f"SELECT DISTINCT table_name FROM ops.backup_partitions WHERE label = '{full_pair}'")),
    [("sr_member",), ("sr_pmc",)])

# 3. a change to one partition, a second later (VisibleVersionTime has whole seconds)
time.sleep(1.1)
query("INSERT INTO sr_hub.sr_member VALUES (90001, 'late', '2023-06-01', 1, true, 1.50, '2025-06-01 08:00:00')")
changed = query("SELECT PARTITION_NAME FROM information_schema.partitions_meta WHERE DB_NAME = 'sr_hub' "
                "AND TABLE_NAME = 'sr_member' ORDER BY VISIBLE_VERSION_TIME DESC LIMIT 1")
expect("the insert changed partition", changed, (("p2",),))

# 4. incremental: only that partition
time.sleep(1.1)
br("backup", "incremental", "--group", "pair")
incrementals = labels("incremental")
expect("one incremental backup recorded", len(incrementals), 1)
incremental = incrementals[0]
expect("the incremental backed up only the changed partition", query(
    f"SELECT table_name, partition_name FROM ops.backup_partitions WHERE label = '{incremental}' "
    "ORDER BY table_name, partition_name"), (("sr_member", "p2"),))
snapshot = query(f"SHOW SNAPSHOT ON test_repo WHERE SNAPSHOT = '{incremental}'")
expect("the incremental snapshot is in the repository", len(snapshot), 1)

# 5. one table from the first full backup
query("INSERT INTO sr_hub.sr_pmc VALUES (99999, 1, 'late', '2025-01-01')")
expect("a row added after the backup", one("SELECT count(*) FROM sr_hub.sr_pmc"), pmcs + 1)
br("restore", "--target-label", full_all, "--table", "sr_pmc", "--yes")
expect("sr_pmc holds the snapshot's rows", one("SELECT count(*) FROM sr_hub.sr_pmc"), pmcs)
expect("the added row is gone", one("SELECT count(*) FROM sr_hub.sr_pmc WHERE pmc_id = 99999"), 0)

# 6. the whole first full backup: sr_member loses the inserted row
br("restore", "--target-label", full_all, "--yes")
expect("sr_member holds the full snapshot's rows", one("SELECT count(*) FROM sr_hub.sr_member"), members)
tables = {r[0] for r in query("SHOW TABLES FROM sr_hub")}
for t in ["sr_member", "sr_pmc", "sr_event", "sr_region"]:
    if t not in tables:
        fail(f"{t} is missing after the swap: {sorted(tables)}")
    if f"{t}_restored" in tables:
        fail(f"{t}_restored was left behind: {sorted(tables)}")
ok("every table swapped in, no _restored copy left")

# 7. the incremental chain: base full (pair) + the changed partition
br("restore", "--target-label", incremental, "--yes")
expect("sr_member holds the base and the incremental rows",
       one("SELECT count(*) FROM sr_hub.sr_member"), members + 1)
expect("the inserted row is back", one("SELECT name FROM sr_hub.sr_member WHERE sr_id = 90001"), "late")
partition_rows = query("SHOW PARTITIONS FROM sr_hub.sr_member")
expect("sr_member keeps its four partitions", sorted(r[1] for r in partition_rows), ["p1", "p2", "p3", "p4"])

# 8. the tool's own history
history = query("SELECT backup_label, restore_type, status FROM ops.restore_history ORDER BY started_at, backup_label")
if not history or any(r[2] != "FINISHED" for r in history):
    fail(f"restore history: {history!r}")
ok(f"restore history: {len(history)} restores, all FINISHED")
active = query("SELECT scope, label FROM ops.run_status WHERE state = 'ACTIVE'")
expect("no job left ACTIVE", active, ())
print("starrocks-br: all checks passed")
