"""Every column type of the embedded engine, read back through three MySQL drivers.

Run by tests/clients.rs against `srbackup serve` on 127.0.0.1, whose table `types.all_types`
holds the rows of EXPECTED (see the test for the INSERT). For each driver (PyMySQL, Oracle's
mysql-connector-python in pure Python and with its C extension) the rows must come back as
exactly these Python values: a DATETIME written with ISO's `T`, for one, reads as midnight in
the C extension, and a BOOLEAN as text would not be an int.

Also: a connection with no database (mysql-connector's pure driver sends an empty name), and
the session statements drivers and tools send. Prints one line per check; exits non-zero on the
first failure.
"""

import argparse
import datetime
from decimal import Decimal

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--password", required=True)
args = parser.parse_args()

BIG = 99999999999999999999999999999999999999  # LARGEINT: 38 digits

COLUMNS = [
    "id", "b", "ti", "si", "i", "bi", "li", "f", "d", "dec", "c", "vc", "s", "dt", "ts",
]
EXPECTED = [
    (1, 1, -128, -32768, -2147483648, -9223372036854775808, -BIG, -1.5, -2.25,
     Decimal("-1234567.891"), "ab", "héllo wörld", "long text, with 'quotes'",
     datetime.date(1, 1, 1), datetime.datetime(2026, 11, 29, 20, 10, 5)),
    (2, 0, 127, 32767, 2147483647, 9223372036854775807, BIG, 3.25, 1e300,
     Decimal("9999999.999"), "abcd", "", "x",
     datetime.date(9999, 12, 31), datetime.datetime(2026, 11, 29, 20, 10, 5, 123456)),
    (3, None, None, None, None, None, None, None, None, None, None, None, None, None, None),
]

from checks import check, finish


def compare(driver, rows):
    rows = [tuple(r) for r in rows]
    check(f"{driver}: {len(EXPECTED)} rows", len(rows) == len(EXPECTED), repr(rows))
    for got, want in zip(rows, EXPECTED):
        for col, g, w in zip(COLUMNS, got, want):
            same = g == w and type(g) is type(w)
            check(f"{driver}: row {want[0]} column {col} = {w!r}", same, f"got {g!r} ({type(g).__name__})")


def run_pymysql():
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", port=args.port, user="root",
                           password=args.password, database="types")
    with conn.cursor() as cur:
        cur.execute("SELECT " + ", ".join(COLUMNS) + " FROM all_types ORDER BY id")
        compare("PyMySQL", cur.fetchall())
        # Metadata drivers convert by: BOOLEAN is TINYINT, DATETIME is DATETIME.
        types = {d[0]: d[1] for d in cur.description}
        check("PyMySQL: BOOLEAN is sent as TINYINT", types["b"] == 1, repr(types["b"]))
        check("PyMySQL: DATETIME is sent as DATETIME", types["ts"] == 12, repr(types["ts"]))
    conn.close()


def run_connector(use_pure):
    import mysql.connector

    name = "mysql-connector (pure)" if use_pure else "mysql-connector (C extension)"
    if not use_pure:
        from mysql.connector import HAVE_CEXT
        check(f"{name}: the C extension is installed", HAVE_CEXT)
    conn = mysql.connector.connect(host="127.0.0.1", port=args.port, user="root",
                                   password=args.password, database="types", use_pure=use_pure)
    cur = conn.cursor()
    cur.execute("SELECT " + ", ".join(COLUMNS) + " FROM all_types ORDER BY id")
    compare(name, cur.fetchall())
    # What starrocks-br does after every statement.
    cur.execute("INSERT INTO all_types (id) VALUES (99)")
    conn.commit()
    cur.execute("SELECT count(*) FROM all_types WHERE id = 99")
    check(f"{name}: INSERT then commit", cur.fetchall() == [(1,)])
    cur.execute("DELETE FROM all_types WHERE id = 99")
    conn.commit()
    cur.close()
    # Server-side prepared statements (COM_STMT_PREPARE/EXECUTE, the binary protocol).
    cur = conn.cursor(prepared=True)
    cur.execute("SELECT " + ", ".join(COLUMNS) + " FROM all_types WHERE id = %s OR id = ? ORDER BY id".replace("%s", "?"), (1, 3))
    got = [tuple(r) for r in cur.fetchall()]
    check(f"{name}: prepared SELECT with parameters", got == [EXPECTED[0], EXPECTED[2]], repr(got))
    row = (7, 1, 5, 300, 70000, 2**40, 12, 0.5, 2.5, Decimal("1.250"), "q", "it's \\ odd", "s",
           datetime.date(2024, 2, 29), datetime.datetime(2024, 2, 29, 23, 59, 58))
    cur.execute("INSERT INTO all_types VALUES (" + ", ".join("?" * len(COLUMNS)) + ")", row)
    conn.commit()
    cur.execute("SELECT " + ", ".join(COLUMNS) + " FROM all_types WHERE id = ?", (7,))
    got = [tuple(r) for r in cur.fetchall()]
    check(f"{name}: prepared INSERT of every type reads back", got == [row], repr(got))
    cur.execute("DELETE FROM all_types WHERE id = ?", (7,))
    conn.commit()
    cur.close()
    conn.close()
    # No database: the pure driver sends an empty name, the C extension none.
    conn = mysql.connector.connect(host="127.0.0.1", port=args.port, user="root",
                                   password=args.password, use_pure=use_pure)
    cur = conn.cursor()
    cur.execute("SELECT DATABASE()")
    check(f"{name}: connects without a database", cur.fetchall() == [(None,)])
    cur.execute("SHOW VARIABLES LIKE 'time_zone'")
    rows = cur.fetchall()
    check(f"{name}: SHOW VARIABLES LIKE 'time_zone' is a str", len(rows) == 1 and rows[0][1] == "UTC", repr(rows))
    cur.close()
    conn.close()


def session_statements():
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", port=args.port, user="root", password=args.password)
    with conn.cursor() as cur:
        cur.execute("SELECT CURRENT_VERSION()")
        version = cur.fetchone()[0]
        check("CURRENT_VERSION() names a StarRocks release", version.startswith("3."), version)
        cur.execute("SET query_timeout = 600")
        cur.execute("SELECT @@query_timeout, @@time_zone, @@session.tx_isolation, @@lower_case_table_names")
        check("SET is kept for the session", cur.fetchone() == (600, "UTC", "REPEATABLE-READ", 0))
        try:
            cur.execute("SET time_zone = '+08:00'")
            check("a time zone other than UTC is refused", False)
        except pymysql.err.MySQLError as e:
            check("a time zone other than UTC is refused with 1231", e.args[0] == 1231, repr(e.args))
        # A query past the session's query_timeout is stopped with MySQL's 1317.
        cur.execute("SET query_timeout = 1")
        try:
            cur.execute("SELECT count(*) FROM generate_series(1, 100000000000)")
            check("a query past query_timeout is stopped", False)
        except pymysql.err.MySQLError as e:
            check("a query past query_timeout is stopped with 1317", e.args[0] == 1317, repr(e.args))
        cur.execute("SET query_timeout = 300")
        cur.execute("SELECT NULL AS n")
        check("an untyped NULL is NULL", cur.fetchone() == (None,))
        cur.execute("SHOW VARIABLES WHERE Variable_name IN ('sql_mode', 'autocommit')")
        check("SHOW VARIABLES WHERE", len(cur.fetchall()) == 2)
        cur.execute("SHOW FRONTENDS")
        fe = cur.fetchall()
        check("SHOW FRONTENDS: [9] Join and [10] Alive", len(fe) == 1 and fe[0][9] == "true" and fe[0][10] == "true", repr(fe))
        cur.execute("SHOW BACKENDS")
        be = cur.fetchall()
        check("SHOW BACKENDS: [8] Alive", len(be) == 1 and be[0][8] == "true", repr(be))
        cur.execute("SHOW SCHEMAS")
        check("SHOW SCHEMAS lists information_schema", ("information_schema",) in cur.fetchall())
        cur.execute("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.tables WHERE table_schema = 'types'")
        check("information_schema.tables", cur.fetchall() == (("all_types", "BASE TABLE"),))
        cur.execute(
            "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE FROM information_schema.columns "
            "WHERE TABLE_SCHEMA = 'types' AND TABLE_NAME = 'all_types' ORDER BY ORDINAL_POSITION LIMIT 3"
        )
        cols = cur.fetchall()
        check("information_schema.columns", cols == (("id", "int", "NO"), ("b", "boolean", "YES"), ("ti", "tinyint", "YES")), repr(cols))
        try:
            cur.execute("SELECT * FROM information_schema.no_such_table")
            check("an unknown information_schema table is refused", False)
        except pymysql.err.MySQLError as e:
            check("an unknown information_schema table is refused with 1146", e.args[0] == 1146, repr(e.args))
    conn.close()


run_pymysql()
run_connector(use_pure=True)
run_connector(use_pure=False)
session_statements()
finish()
