"""SQLAlchemy against `srbackup serve`, with the StarRocks dialect (PyPI `starrocks`) and the
plain `mysql+pymysql` dialect: connect, inspect the sr_hub fixture (schemas, tables, views,
columns with their types, the primary key), and run a SELECT built with SQLAlchemy Core.

Run by tests/clients.rs. Prints one line per check; exits non-zero on any failure.
"""

import argparse
import warnings

import sqlalchemy
from sqlalchemy import MetaData, Table, create_engine, inspect, select

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--password", required=True)
args = parser.parse_args()

from checks import check, finish


TABLES = {"sr_member", "sr_pmc", "sr_event", "sr_region"}
VIEWS = {"sr_view1", "sr_view2"}

for scheme in ["starrocks", "mysql+pymysql"]:
    url = f"{scheme}://root:{args.password}@127.0.0.1:{args.port}/sr_hub"
    engine = create_engine(url)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        insp = inspect(engine)
        schemas = insp.get_schema_names()
        check(f"{scheme}: schemas", "sr_hub" in schemas, repr(schemas))
        tables = set(insp.get_table_names(schema="sr_hub"))
        check(f"{scheme}: tables", TABLES <= tables, repr(tables))
        views = set(insp.get_view_names(schema="sr_hub"))
        check(f"{scheme}: views", VIEWS <= views, repr(views))
        columns = insp.get_columns("sr_member", schema="sr_hub")
        by_name = {c["name"]: c for c in columns}
        check(
            f"{scheme}: columns of sr_member",
            list(by_name) == ["sr_id", "name", "reg_date", "city_code", "verified", "score", "last_seen"],
            repr(list(by_name)),
        )
        kinds = {n: type(c["type"]).__name__.upper() for n, c in by_name.items()}
        check(f"{scheme}: INT column", "INT" in kinds["sr_id"], repr(kinds))
        check(f"{scheme}: VARCHAR column", "VARCHAR" in kinds["name"], repr(kinds))
        check(f"{scheme}: DATE column", kinds["reg_date"] == "DATE", repr(kinds))
        check(f"{scheme}: DECIMAL column", kinds["score"] in ("DECIMAL", "NUMERIC"), repr(kinds))
        check(f"{scheme}: DATETIME column", kinds["last_seen"] == "DATETIME", repr(kinds))
        check(f"{scheme}: NOT NULL", by_name["sr_id"]["nullable"] is False and by_name["city_code"]["nullable"] is True)
        check(f"{scheme}: has_table", insp.has_table("sr_pmc", schema="sr_hub") and not insp.has_table("nope", schema="sr_hub"))
        view_columns = [c["name"] for c in insp.get_columns("sr_view1", schema="sr_hub")]
        check(f"{scheme}: columns of a view", len(view_columns) > 0, repr(view_columns))
    unknown = [str(w.message) for w in caught if "Unknown column definition" in str(w.message)]
    check(f"{scheme}: every column definition understood", not unknown, repr(unknown[:3]))

    # A query built with SQLAlchemy Core over a reflected table.
    member = Table("sr_member", MetaData(), schema="sr_hub", autoload_with=engine)
    query = (
        select(member.c.sr_id, member.c.name, member.c.reg_date)
        .where(member.c.sr_id <= 3)
        .order_by(member.c.sr_id)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).fetchall()
        check(f"{scheme}: Core SELECT", [r.sr_id for r in rows] == [1, 2, 3] and rows[0].name == "member_1", repr(rows))
        count = conn.execute(select(sqlalchemy.func.count()).select_from(member)).scalar()
        check(f"{scheme}: count(*)", count == 3000, repr(count))
    engine.dispose()

finish()
