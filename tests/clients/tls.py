"""PyMySQL and mysql-connector over TLS against `srbackup serve` (run by tests/tls.rs).

Arguments: port, the server's certificate (the client's CA), and the plugin the server's
greeting names. Users `nat` (mysql_native_password) and `sha` (caching_sha2_password, REQUIRE
SSL) exist. Checks: the certificate is verified (host name included), both users log in over
TLS with the plugin PyMySQL picks from the greeting, `sha` is refused over plain text, a wrong
password is refused. Prints one line per check and `N failures`.
"""

import sys

import pymysql

from checks import check, finish

port, ca, plugin = int(sys.argv[1]), sys.argv[2], sys.argv[3]
tls = {"ca": ca, "check_hostname": True}


def login(user, password, ssl):
    try:
        c = pymysql.connect(host="127.0.0.1", port=port, user=user, password=password, ssl=ssl)
    except pymysql.err.MySQLError as e:
        return None, e.args
    return c, None


for user, password in [("nat", "nat-pw"), ("sha", "sha-pw")]:
    c, err = login(user, password, tls)
    check(f"{user} over TLS", c is not None, err)
    if c is not None:
        check(f"{user} used {plugin}", c._auth_plugin_name == plugin, c._auth_plugin_name)
        with c.cursor() as cur:
            cur.execute("SELECT 1")
            check(f"{user} runs a statement", cur.fetchone()[0] == 1)
        check(f"{user}'s socket is TLS", c._sock.version() is not None, "")
        c.close()

# Oracle's mysql-connector, pure Python and C extension, certificate checked.
import mysql.connector

for pure in (True, False):
    for user, password in [("nat", "nat-pw"), ("sha", "sha-pw")]:
        name = f"mysql-connector ({'pure' if pure else 'C'}) {user} over TLS"
        try:
            c = mysql.connector.connect(
                host="127.0.0.1", port=port, user=user, password=password, use_pure=pure,
                ssl_ca=ca, ssl_verify_cert=True, ssl_verify_identity=True,
            )
            cur = c.cursor()
            cur.execute("SELECT 1")
            check(name, cur.fetchall() == [(1,)])
            c.close()
        except mysql.connector.Error as e:
            check(name, False, e)

c, err = login("sha", "sha-pw", None)
check("REQUIRE SSL user refused over plain text", c is None and err[0] == 1045, err)
c, err = login("nat", "not-it", tls)
check("wrong password refused", c is None and err[0] == 1045, err)
finish()
