"""A REVOKE takes effect on the next statement of an open session (PyMySQL).

Run by tests/privileges.rs against `srbackup serve` on 127.0.0.1 holding the sr_hub fixture:
root creates `carl` with SELECT on sr_hub.sr_member; carl's connection stays open; root
revokes; carl's next statement on the same connection is refused with 5203. Then a role:
granted and activated with SET ROLE, revoked from the role, refused again.
Prints one line per check; exits non-zero on the first failure.
"""

import sys

import pymysql

from checks import check, finish

port, root_pw = int(sys.argv[1]), sys.argv[2]


def connect(user, password):
    return pymysql.connect(host="127.0.0.1", port=port, user=user, password=password, autocommit=True)


root = connect("root", root_pw)
with root.cursor() as c:
    c.execute("CREATE USER carl IDENTIFIED BY 'carl-pw'")
    c.execute("GRANT SELECT ON TABLE sr_hub.sr_member TO USER carl")

carl = connect("carl", "carl-pw")
with carl.cursor() as c:
    c.execute("SELECT count(*) FROM sr_hub.sr_member")
    check("granted select runs", c.fetchone()[0] > 0)

with root.cursor() as c:
    c.execute("REVOKE SELECT ON TABLE sr_hub.sr_member FROM USER carl")


def refused(conn, sql):
    try:
        with conn.cursor() as c:
            c.execute(sql)
        return None
    except pymysql.err.MySQLError as e:
        return e.args


err = refused(carl, "SELECT count(*) FROM sr_hub.sr_member")
check("revoke seen on the open connection", err is not None and err[0] == 5203, err)
if err is not None and err[0] == 5203:
    print("revoke seen")

with root.cursor() as c:
    c.execute("CREATE ROLE viewer")
    c.execute("GRANT SELECT ON TABLE sr_hub.sr_member TO ROLE viewer")
    c.execute("GRANT viewer TO USER carl")
err = refused(carl, "SELECT count(*) FROM sr_hub.sr_member")
check("a granted role is inactive until SET ROLE", err is not None and err[0] == 5203, err)
with carl.cursor() as c:
    c.execute("SET ROLE viewer")
    c.execute("SELECT count(*) FROM sr_hub.sr_member")
    check("SET ROLE activates it", c.fetchone()[0] > 0)
with root.cursor() as c:
    c.execute("REVOKE viewer FROM USER carl")
err = refused(carl, "SELECT count(*) FROM sr_hub.sr_member")
check("a revoked role stops counting on the next statement", err is not None and err[0] == 5203, err)
with root.cursor() as c:
    c.execute("GRANT viewer TO USER carl")
err = refused(carl, "SELECT count(*) FROM sr_hub.sr_member")
check("granted again, it stays inactive until SET ROLE", err is not None and err[0] == 5203, err)
with carl.cursor() as c:
    c.execute("SET ROLE viewer")
    c.execute("SELECT count(*) FROM sr_hub.sr_member")
    check("SET ROLE activates it again", c.fetchone()[0] > 0)
finish()
