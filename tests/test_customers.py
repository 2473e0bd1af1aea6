"""The customers logic module, on a real database file."""

from __future__ import annotations

import json
import sys
import types
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from salescrm import customers as cu
from salescrm import db
from salescrm.customers import Filters
from salescrm.errors import BusinessRule, Conflict, IllegalTransition, NotFound, ValidationError


@pytest.fixture
def conn(tmp_path):
    c = db.connect(tmp_path / "c.db")
    yield c
    c.close()


def tx(conn, fn, *args, **kw):
    with db.write_tx(conn):
        return fn(conn, *args, **kw)


def add(conn, name, **kw):
    return tx(conn, cu.add, name, **kw)


def ids(rows):
    return [r["id"] for r in rows]


def audit_rows(conn):
    return [tuple(r) for r in conn.execute("SELECT action, entity, entity_id FROM audit ORDER BY id")]


# --------------------------------------------------------------------------- add, get, resolve


def test_add_normalises_and_audits(conn):
    cid = add(conn, "  Ann  Lee ", email=" Ann.Lee@Example.COM ", phone="+1 (555) 010-9999",
              company="ACME  Corp", credit_limit="1234.50", payment_terms_days="30",
              tags=["VIP ", "east", "vip"])
    c = cu.get(conn, cid)
    assert c["name"] == "Ann  Lee" and c["name_key"] == "ann lee"
    assert c["email"] == "Ann.Lee@Example.COM" and c["email_key"] == "ann.lee@example.com"
    assert c["phone"] == "+15550109999"
    assert c["company_key"] == "acme corp"
    assert c["credit_limit"] == 123450 and c["payment_terms_days"] == 30
    assert c["tags"] == ["east", "vip"]
    assert c["created_at"].endswith("Z") and c["created_at"] == c["updated_at"]
    assert audit_rows(conn) == [("create", "customer", str(cid))]


def test_add_cjk(conn):
    cid = add(conn, "王芳", email="wang.fang@example.cn", city="上海", tags=["重要"])
    c = cu.get(conn, cid)
    assert (c["name"], c["city"], c["tags"]) == ("王芳", "上海", ["重要"])
    assert ids(cu.search(conn, Filters(search="王"))) == [cid]
    assert ids(cu.search(conn, Filters(city="上海", tags=["重要"]))) == [cid]


def test_writes_need_a_transaction(conn):
    with pytest.raises(AssertionError):
        cu.add(conn, "No Tx")
    assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 0


@pytest.mark.parametrize("kw, match", [
    ({"email": "not-an-email"}, "not a valid e-mail"),
    ({"email": "a@b"}, "not a valid e-mail"),
    ({"phone": "call me"}, "not a valid phone"),
    ({"phone": "12"}, "3 to 20 digits"),
    ({"credit_limit": "12,50"}, "credit limit is not a valid amount"),
    ({"credit_limit": "-5"}, "credit limit"),
    ({"payment_terms_days": "thirty"}, "payment terms"),
    ({"tags": ["a,b"]}, "comma"),
    ({"tags": [" "]}, "tag must not be empty"),
])
def test_add_refuses_bad_fields(conn, kw, match):
    with pytest.raises(ValidationError, match=match):
        add(conn, "Bad", **kw)
    assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 0


def test_name_required(conn):
    with pytest.raises(ValidationError, match="name"):
        add(conn, "   ")


def test_duplicate_email_names_existing(conn):
    first = add(conn, "王芳", email="wang@example.cn")
    with pytest.raises(Conflict) as err:
        add(conn, "Other", email="  WANG@Example.CN ")
    assert f"customer {first} (王芳)" in err.value.message
    assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 1


def test_duplicate_external_id(conn):
    add(conn, "A", external_id="X-1")
    with pytest.raises(Conflict, match="external id"):
        add(conn, "B", external_id="X-1")


def test_resolve(conn):
    cid = add(conn, "Ann", email="Ann@X.com")
    assert cu.resolve(conn, str(cid)) == cid
    assert cu.resolve(conn, f"#{cid}") == cid
    assert cu.resolve(conn, cid) == cid
    assert cu.resolve(conn, " ann@x.COM ") == cid
    with pytest.raises(NotFound, match="no customer with id 99"):
        cu.resolve(conn, "99")
    with pytest.raises(NotFound, match="no customer with e-mail"):
        cu.resolve(conn, "nobody@x.com")
    with pytest.raises(ValidationError, match="not a customer id or e-mail"):
        cu.resolve(conn, "Ann")


# --------------------------------------------------------------------------- edit


def test_edit_changes_clears_and_tags(conn):
    cid = add(conn, "Ann", email="ann@x.com", phone="123 456", city="Paris", tags=["a", "b"])
    changed = tx(conn, cu.edit, cid, {"city": "Lyon", "phone": "", "company": "Acme"},
                 add_tags=["C"], remove_tags=["a"])
    assert set(changed) == {"city", "phone", "company", "tags"}
    c = cu.get(conn, cid)
    assert (c["city"], c["phone"], c["company_key"], c["tags"]) == ("Lyon", None, "acme", ["b", "c"])
    assert tx(conn, cu.edit, cid, {"city": "Lyon"}) == []
    assert tx(conn, cu.edit, cid, {}, set_tags=[""]) == ["tags"]
    assert cu.get(conn, cid)["tags"] == []
    assert [a for a in audit_rows(conn) if a[0] == "update"] == [("update", "customer", str(cid))] * 2


def test_edit_email_uniqueness(conn):
    a = add(conn, "A", email="a@x.com")
    add(conn, "B", email="b@x.com")
    with pytest.raises(Conflict, match="customer 2 .B."):
        tx(conn, cu.edit, a, {"email": "B@x.com"})
    assert tx(conn, cu.edit, a, {"email": "A@X.com"}) == ["email"]  # its own, in another case
    assert cu.get(conn, a)["email_key"] == "a@x.com"


def test_edit_refuses_clearing_name(conn):
    cid = add(conn, "Ann")
    with pytest.raises(ValidationError, match="name must not be empty"):
        tx(conn, cu.edit, cid, {"name": ""})


def test_edit_name_updates_key(conn):
    cid = add(conn, "Ann")
    tx(conn, cu.edit, cid, {"name": "ＢＥＴＨ  Smith"})
    assert cu.get(conn, cid)["name_key"] == "beth smith"


# --------------------------------------------------------------------------- delete


def add_order(conn, cid):
    """An order row for ``cid`` in whatever ``orders`` table the schema has
    (a minimal one when the orders migration is not there)."""
    if conn.execute("SELECT 1 FROM sqlite_schema WHERE name = 'orders'").fetchone() is None:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY,"
                     " customer_id INTEGER NOT NULL REFERENCES customers(id)) STRICT")
    values = {"customer_id": cid}
    n = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
    for col in conn.execute("SELECT * FROM pragma_table_info('orders')"):
        if col["name"] in values or col["pk"] or not col["notnull"] or col["dflt_value"] is not None:
            continue
        values[col["name"]] = 0 if "INT" in col["type"].upper() else f"{col['name']}-{n}"
    conn.execute(f"INSERT INTO orders ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                 list(values.values()))


def test_delete_without_orders_removes_everything(conn):
    cid = add(conn, "Ann", tags=["x"])
    tx(conn, cu.log, cid, "call", "hi", follow_up="+3d")
    tx(conn, cu.rate, cid, 4)
    assert tx(conn, cu.delete, cid) == "deleted"
    for table in ("customers", "customer_tags", "interactions", "ratings", "tasks"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
    assert audit_rows(conn)[-1] == ("delete", "customer", str(cid))


def test_delete_with_orders_refused_or_archived(conn):
    cid = add(conn, "Ann")
    other = add(conn, "Bob")
    add_order(conn, cid)
    with pytest.raises(BusinessRule) as err:
        tx(conn, cu.delete, cid)
    assert "has 1 orders" in err.value.message and "--force" in err.value.hint
    assert cu.get(conn, cid)["archived_at"] is None
    assert tx(conn, cu.delete, cid, force=True) == "archived"
    assert cu.get(conn, cid)["archived_at"]
    assert tx(conn, cu.delete, cid, force=True) == "already archived"
    assert ids(cu.search(conn)) == [other]
    assert ids(cu.search(conn, Filters(archived="archived"))) == [cid]
    assert ids(cu.search(conn, Filters(archived="all"))) == [cid, other]
    assert tx(conn, cu.restore, cid) is True
    assert ids(cu.search(conn)) == [cid, other]
    assert tx(conn, cu.delete, other, force=True) == "deleted"  # no orders: really deleted


def test_delete_kept_customer_of_a_merge(conn):
    a, b = add(conn, "A"), add(conn, "B")
    tx(conn, cu.merge, a, b)
    assert tx(conn, cu.delete, a) == "deleted"
    assert conn.execute("SELECT count(*) FROM customer_merges").fetchone()[0] == 0


# --------------------------------------------------------------------------- list: filters, sort, limit


@pytest.fixture
def people(conn):
    rows = [
        ("Ann Lee", dict(email="ann@acme.com", company="Acme", phone="+44 20 7946 0001", city="London",
                         region="West", segment="retail", owner="sam", tags=["vip"])),
        ("王芳", dict(email="wang.fang@example.cn", phone="+86 138 0013 8000", city="上海", region="East",
                    segment="retail", owner="li", tags=["vip", "asia"])),
        ("Bob Brown", dict(email="bob@shop.io", company="50% Off Ltd", city="Leeds", region="West",
                           segment="wholesale", owner="sam")),
        ("李雷", dict(city="北京", region="East", segment="wholesale", tags=["asia"])),
        ("anna ü", dict(company="ACME", region="West")),
    ]
    return [add(conn, name, **kw) for name, kw in rows]


def test_search_fields(conn, people):
    ann, wang, bob, li, anna = people
    assert ids(cu.search(conn, Filters(search="ANN"))) == [ann, anna]
    assert ids(cu.search(conn, Filters(search="acme"))) == [ann, anna]
    assert ids(cu.search(conn, Filters(search="@shop"))) == [bob]
    assert ids(cu.search(conn, Filters(search="138 0013"))) == [wang]
    assert ids(cu.search(conn, Filters(search="芳"))) == [wang]
    assert ids(cu.search(conn, Filters(search="Ü"))) == [anna]
    assert ids(cu.search(conn, Filters(search="50%"))) == [bob]  # a literal %, not a wildcard
    assert ids(cu.search(conn, Filters(search="_"))) == []
    with pytest.raises(ValidationError, match="search text is empty"):
        cu.search(conn, Filters(search="  "))


def test_filters_and_together(conn, people):
    ann, wang, bob, li, anna = people
    assert ids(cu.search(conn, Filters(region="East"))) == [wang, li]
    assert ids(cu.search(conn, Filters(region="West", segment="retail"))) == [ann]
    assert ids(cu.search(conn, Filters(owner="sam"))) == [ann, bob]
    assert ids(cu.search(conn, Filters(tags=["asia"]))) == [wang, li]
    assert ids(cu.search(conn, Filters(tags=["asia", "VIP"]))) == [wang]
    assert ids(cu.search(conn, Filters(segment=""))) == [anna]
    assert ids(cu.search(conn, Filters(since="today"))) == people
    assert ids(cu.search(conn, Filters(since="tomorrow"))) == []
    with pytest.raises(ValidationError, match="not a date"):
        cu.search(conn, Filters(since="last week"))
    assert cu.count(conn, Filters(region="West")) == 3


def test_sort(conn, people):
    ann, wang, bob, li, anna = people
    assert ids(cu.search(conn, sort="name")) == [ann, anna, bob, li, wang]  # 李 U+674E < 王 U+738B
    assert ids(cu.search(conn, sort="-name")) == [wang, li, bob, anna, ann]
    assert ids(cu.search(conn, sort="region,-id")) == [li, wang, anna, bob, ann]
    # blanks last whichever the direction
    assert ids(cu.search(conn, sort="company"))[-2:] == [wang, li]
    assert ids(cu.search(conn, sort="-company"))[-2:] == [wang, li]
    conn.execute("UPDATE customers SET created_at = '2026-01-01T00:00:00Z'")
    assert ids(cu.search(conn, sort="-created_at", limit=2)) == [ann, wang]  # same time: by id
    conn.execute("UPDATE customers SET created_at = '2026-01-02T00:00:00Z' WHERE id = ?", (li,))
    assert ids(cu.search(conn, sort="-created_at", limit=2)) == [li, ann]
    assert ids(cu.search(conn, limit=2)) == [ann, wang]
    assert cu.search(conn, Filters(search="wang"))[0]["tags"] == ["asia", "vip"]


@pytest.mark.parametrize("spec", ["id", "name", "-name", "company", "-company", "city,-id", "-created_at",
                                  "segment,name", "-credit_limit"])
@pytest.mark.parametrize("search", [None, "a", "王"])
def test_page_matches_full_listing(conn, people, spec, search):
    full = ids(cu.search(conn, Filters(search=search), sort=spec))
    for k in (1, 2, 3, 10):
        assert ids(cu.search(conn, Filters(search=search), sort=spec, limit=k)) == full[:k]


def test_phone_digits_search_looks_at_phones_only(conn):
    a = add(conn, "A", phone="+86 138 0013 8000")
    add(conn, "B", email="user13800138@example.com", company="138 00 13")
    assert ids(cu.search(conn, Filters(search="138-0013"))) == [a]


@pytest.mark.parametrize("spec", ["nope", "name,nope", "", "name;drop table customers", "-"])
def test_sort_unknown_field(conn, spec):
    with pytest.raises(ValidationError) as err:
        cu.search(conn, sort=spec)
    assert "cannot sort by" in err.value.message
    assert "created_at" in err.value.hint and "name" in err.value.hint


def test_limit_must_be_positive(conn):
    with pytest.raises(ValidationError, match="--limit"):
        cu.search(conn, limit=0)


def test_query_plans_use_indexes(conn):
    def plan(**kw):
        return " | ".join(cu.query_plan(conn, kw.pop("filters", None), **kw))

    assert "customers_segment" in plan(filters=Filters(segment="retail"))
    assert "customers_region" in plan(filters=Filters(region="East"))
    assert "customers_city" in plan(filters=Filters(city="Leeds"))
    assert "customers_owner" in plan(filters=Filters(owner="sam"))
    assert "customers_created" in plan(filters=Filters(since="2026-01-01"), sort="created_at")
    assert "customers_created" in plan(sort="-created_at")
    assert "customers_name_key" in plan(sort="name")
    assert "TEMP B-TREE" not in plan()  # by id: the rowid order
    assert "customer_tags_tag" in plan(filters=Filters(tags=["vip"]))


# --------------------------------------------------------------------------- interactions, ratings, tasks


def test_log_with_follow_up(conn):
    cid = add(conn, "Ann")
    iid, task = tx(conn, cu.log, cid, "Meeting", "Spring catalogue", at="2026-03-01T14:30:00+01:00",
                   follow_up="2026-03-08")
    row = conn.execute("SELECT * FROM interactions WHERE id = ?", (iid,)).fetchone()
    assert (row["kind"], row["text"], row["at"]) == ("meeting", "Spring catalogue", "2026-03-01T13:30:00Z")
    t = conn.execute("SELECT * FROM tasks WHERE id = ?", (task,)).fetchone()
    assert (t["due"], t["interaction_id"], t["text"]) == ("2026-03-08", iid, "Follow up: Spring catalogue")
    iid2, none = tx(conn, cu.log, cid, "note", "no follow-up")
    assert none is None


@pytest.mark.parametrize("args, kw, match", [
    (("fax", "x"), {}, "unknown interaction type"),
    (("call", " "), {}, "text must not be empty"),
    (("call", "x"), {"at": "yesterday-ish"}, "not a date-time"),
    (("call", "x"), {"follow_up": "soon"}, "not a date"),
])
def test_log_refuses(conn, args, kw, match):
    cid = add(conn, "Ann")
    with pytest.raises(ValidationError, match=match):
        tx(conn, cu.log, cid, *args, **kw)
    assert conn.execute("SELECT count(*) FROM interactions").fetchone()[0] == 0


def test_log_unknown_customer(conn):
    with pytest.raises(NotFound):
        tx(conn, cu.log, 42, "call", "x")


@pytest.mark.parametrize("bad", ["abc", "0", "6", "4.5", "", "-1", True])
def test_parse_score_refuses(bad):
    with pytest.raises(ValidationError, match="1 to 5"):
        cu.parse_score(bad)


def test_ratings_average(conn):
    cid = add(conn, "Ann")
    for s in (5, "4", " 4 "):
        tx(conn, cu.rate, cid, s, "fine")
    p = cu.profile(conn, cid)["customer"]
    assert p["rating_count"] == 3 and str(p["rating_avg"]) == "4.33"
    assert cu.profile(conn, add(conn, "New"))["customer"]["rating_avg"] is None


def test_agenda(conn):
    today = date(2026, 3, 10)
    a = add(conn, "王芳", owner="li")
    b = add(conn, "Bob", owner="sam")
    t_late = tx(conn, cu.remind, a, "2026-03-01", "call back", today=today)
    t_today = tx(conn, cu.remind, b, "today", "send prices", today=today)
    t_soon = tx(conn, cu.remind, a, "+3d", "visit", today=today)
    t_far = tx(conn, cu.remind, b, "2026-06-01", "renewal", today=today)
    rows = cu.agenda(conn, today=today)
    assert ids(rows) == [t_late, t_today]
    assert rows[0]["customer"] == "王芳" and rows[0]["days_overdue"] == 9 and rows[0]["status"] == "overdue"
    assert rows[1]["days_overdue"] == 0 and rows[1]["status"] == "today"
    assert ids(cu.agenda(conn, days=3, today=today)) == [t_late, t_today, t_soon]
    assert ids(cu.agenda(conn, days=365, owner="sam", today=today)) == [t_today, t_far]
    assert tx(conn, cu.complete_task, t_late) == a
    with pytest.raises(IllegalTransition, match="already done"):
        tx(conn, cu.complete_task, t_late)
    with pytest.raises(NotFound, match="no task"):
        tx(conn, cu.complete_task, 999)
    assert ids(cu.agenda(conn, today=today)) == [t_today]
    conn.execute("UPDATE customers SET archived_at = 'x' WHERE id = ?", (b,))
    assert ids(cu.agenda(conn, today=today)) == []
    with pytest.raises(ValidationError):
        cu.agenda(conn, days=-1)


def test_profile_shows_tasks_and_latest_interactions(conn):
    cid = add(conn, "Ann")
    for i in range(12):
        tx(conn, cu.log, cid, "call", f"call {i}", at=f"2026-01-{i + 1:02d}T10:00:00Z")
    tx(conn, cu.remind, cid, "2026-01-01", "old")
    p = cu.profile(conn, cid, interactions=3)
    assert [i["text"] for i in p["interactions"]] == ["call 11", "call 10", "call 9"]
    assert [t["text"] for t in p["tasks"]] == ["old"]
    assert p["customer"]["order_count"] == 0 and p["customer"]["last_order_date"] is None


# --------------------------------------------------------------------------- orders summary


@pytest.fixture
def fake_orders(monkeypatch):
    mod = types.ModuleType("salescrm.orders")
    monkeypatch.setitem(sys.modules, "salescrm.orders", mod)
    import salescrm

    monkeypatch.setattr(salescrm, "orders", mod, raising=False)
    return mod


def test_orders_summary_from_orders_module(conn, fake_orders):
    add_order(conn, add(conn, "Someone"))
    fake_orders.customer_summary = lambda c, cid: {
        "order_count": 3, "revenue": 123450, "open_balance": 500, "last_order_date": "2026-02-01"}
    cid = add(conn, "Ann")
    assert cu.orders_summary(conn, cid) == {"order_count": 3, "revenue": 123450, "open_balance": 500,
                                            "last_order_date": "2026-02-01"}


def test_orders_summary_zero_without_function_or_table(conn, fake_orders):
    cid = add(conn, "Ann")
    zero = {"order_count": 0, "revenue": 0, "open_balance": 0, "last_order_date": None}
    assert cu.orders_summary(conn, cid) == zero  # no function
    fake_orders.customer_summary = lambda c, i: c.execute("SELECT * FROM no_such_table").fetchall()
    assert cu.orders_summary(conn, cid) == zero  # its table missing
    conn.execute("DROP TABLE IF EXISTS orders")
    fake_orders.customer_summary = lambda c, i: {"order_count": 9}
    assert cu.orders_summary(conn, cid) == zero  # no orders table at all


def test_orders_summary_zero_without_module(conn, monkeypatch):
    monkeypatch.setitem(sys.modules, "salescrm.orders", None)  # import raises ImportError
    assert cu.orders_summary(conn, add(conn, "Ann"))["revenue"] == 0


# --------------------------------------------------------------------------- dupes


def test_dupes(conn):
    a = add(conn, "Ann Lee", email="ann@x.com", phone="+44 1234 5678", company="Acme")
    b = add(conn, "ANN  lee", email="ann+shop@X.com", phone="44 1234 5678", company="acme")
    c = add(conn, "王芳", phone="+86 138 0013 8000")
    d = add(conn, "王芳 ", phone="86 13800138000")
    add(conn, "Ann Lee", company="Other Co")
    f = add(conn, "王 芳", company="上海 贸易")
    g = add(conn, "王芳", company="上海贸易")
    e = add(conn, "Solo", email="solo@x.com")
    rows = cu.dupes(conn)
    groups: dict[int, tuple[str, list[int]]] = {}
    for r in rows:
        groups.setdefault(r["group"], (r["reason"], []))[1].append(r["id"])
    assert sorted(groups.values()) == sorted([
        ("email, phone, name and company", [a, b]),
        ("phone", [c, d]),
        ("name and company", [f, g]),
    ])
    assert e not in [r["id"] for r in rows]
    conn.execute("UPDATE customers SET archived_at = 'x' WHERE id = ?", (d,))
    assert len({r["group"] for r in cu.dupes(conn)}) == 2
    assert len({r["group"] for r in cu.dupes(conn, include_archived=True)}) == 3


# --------------------------------------------------------------------------- merge


def test_merge_moves_everything(conn):
    keep = add(conn, "Ann Lee", email="ann@x.com", tags=["vip", "east"], notes="first")
    other = add(conn, "Ann L.", phone="555 0101", company="Acme", email="ann.l@x.com", tags=["east", "new"],
                city="Paris", credit_limit="100")
    tx(conn, cu.log, other, "call", "hello", follow_up="+1d")
    tx(conn, cu.log, other, "email", "again")
    tx(conn, cu.rate, other, 5)
    tx(conn, cu.log, keep, "note", "mine")
    # orders (another developer's table) are found through their foreign key
    add_order(conn, other)
    add_order(conn, other)
    result = tx(conn, cu.merge, keep, other)
    assert result["moved"] == {"customer_tags": 2, "interactions": 2, "ratings": 1, "tasks": 1, "orders": 2}
    assert set(result["filled"]) >= {"phone", "company", "city", "credit_limit", "notes"}
    k = cu.get(conn, keep)
    assert k["tags"] == ["east", "new", "vip"]
    assert (k["phone"], k["company_key"], k["city"], k["credit_limit"]) == ("5550101", "acme", "Paris", 10000)
    assert k["email"] == "ann@x.com"
    assert k["notes"].startswith("first\nFrom merged customer") and "ann.l@x.com" in k["notes"]
    assert "name: Ann L." in k["notes"]
    assert conn.execute("SELECT count(*) FROM customers WHERE id = ?", (other,)).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM interactions WHERE customer_id = ?", (keep,)).fetchone()[0] == 3
    assert conn.execute("SELECT count(*) FROM orders WHERE customer_id = ?", (keep,)).fetchone()[0] == 2
    m = conn.execute("SELECT * FROM customer_merges").fetchone()
    assert (m["kept_id"], m["merged_id"]) == (keep, other)
    assert json.loads(m["moved"])["interactions"] == 2
    assert audit_rows(conn)[-2:] == [("merge", "customer", str(keep)), ("merged_away", "customer", str(other))]
    with pytest.raises(NotFound, match=f"merged into customer {keep}"):
        cu.resolve(conn, str(other))
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    # the other's e-mail was freed and is not the kept customer's
    assert cu.resolve(conn, "ann@x.com") == keep


def test_merge_chain_resolves_to_last(conn):
    a, b, c = add(conn, "A"), add(conn, "B"), add(conn, "C")
    tx(conn, cu.merge, b, a)
    tx(conn, cu.merge, c, b)
    with pytest.raises(NotFound, match=f"merged into customer {c}"):
        cu.resolve(conn, str(a))
    assert [r[0] for r in conn.execute("SELECT kept_id FROM customer_merges ORDER BY id")] == [c, c]


def test_merge_fills_email_from_other(conn):
    keep = add(conn, "Ann")
    other = add(conn, "Ann", email="Ann@X.com")
    tx(conn, cu.merge, keep, other)
    assert cu.resolve(conn, "ann@x.com") == keep
    assert cu.get(conn, keep)["email_key"] == "ann@x.com"


def test_merge_refusals_change_nothing(conn):
    a, b = add(conn, "A"), add(conn, "B")
    with pytest.raises(ValidationError, match="into itself"):
        tx(conn, cu.merge, a, a)
    with pytest.raises(NotFound):
        tx(conn, cu.merge, a, 99)
    conn.execute("CREATE TABLE loyalty (customer_id INTEGER PRIMARY KEY REFERENCES customers(id)) STRICT")
    conn.execute("INSERT INTO loyalty VALUES (?), (?)", (a, b))
    tx(conn, cu.log, b, "call", "x")
    before = conn.execute("SELECT customer_id FROM interactions").fetchall()
    with pytest.raises(Conflict, match="loyalty"):
        tx(conn, cu.merge, a, b)
    assert conn.execute("SELECT customer_id FROM interactions").fetchall() == before
    assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM customer_merges").fetchone()[0] == 0


# --------------------------------------------------------------------------- sampling


@given(st.dictionaries(st.text(min_size=1, max_size=3), st.integers(0, 60), min_size=1, max_size=8),
       st.data())
def test_allocate_sums_exactly_and_is_proportional(sizes, data):
    total = sum(sizes.values())
    n = data.draw(st.integers(0, total))
    q = cu.allocate(sizes, n)
    assert sum(q.values()) == n
    for k, s in sizes.items():
        assert 0 <= q[k] <= s
        assert abs(q[k] * total - n * s) < total or total == 0  # within one of the exact share


def test_allocate_largest_remainder():
    assert cu.allocate({"a": 5, "b": 3, "c": 2}, 5) == {"a": 3, "b": 1, "c": 1}  # 2.5, 1.5, 1.0
    assert cu.allocate({"a": 1, "b": 1, "c": 1}, 2) == {"a": 1, "b": 1, "c": 0}
    with pytest.raises(ValidationError):
        cu.allocate({"a": 1}, 2)


@pytest.fixture
def population(conn):
    rows = []
    for i in range(200):
        region = ["East", "West", "North", None][i % 4 if i < 160 else 0]
        rows.append(add(conn, f"客户 {i}", region=region, segment="retail" if i % 2 else "wholesale"))
    return rows


def test_sample_simple_is_reproducible(conn, population):
    a = cu.sample(conn, 30, seed=7)
    b = cu.sample(conn, 30, seed=7)
    c = cu.sample(conn, 30, seed=8)
    assert ids(a["rows"]) == ids(b["rows"]) and len(set(ids(a["rows"]))) == 30
    assert ids(a["rows"]) != ids(c["rows"])
    assert {r["stratum"] for r in a["rows"]} == {"all"}
    assert a["population"] == 200 and a["seed"] == 7
    assert isinstance(cu.sample(conn, 3)["seed"], int)


def test_sample_stratified(conn, population):
    res = cu.sample(conn, 30, stratify="region", seed=7)
    counts: dict[str, int] = {}
    for r in res["rows"]:
        counts[r["stratum"]] = counts.get(r["stratum"], 0) + 1
        assert r["region"] == (None if r["stratum"] == "(none)" else r["stratum"])
    # East 80, West 40, North 40, none 40 of 200
    assert counts == {"East": 12, "West": 6, "North": 6, "(none)": 6}
    assert {a["stratum"]: a["sampled"] for a in res["allocation"]} == counts
    assert ids(cu.sample(conn, 30, stratify="region", seed=7)["rows"]) == ids(res["rows"])


def test_sample_with_filters_and_refusals(conn, population):
    res = cu.sample(conn, 10, stratify="region", seed=1, filters=Filters(segment="retail"))
    assert all(r["segment"] == "retail" for r in res["rows"]) and res["population"] == 100
    with pytest.raises(ValidationError, match="cannot stratify by 'name'"):
        cu.sample(conn, 5, stratify="name")
    with pytest.raises(ValidationError, match="only 100 match"):
        cu.sample(conn, 101, filters=Filters(segment="retail"))
    with pytest.raises(ValidationError, match="positive"):
        cu.sample(conn, 0)


def test_customer_tables_are_strict_and_fk_clean(conn, people):
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    for t in ("customers", "customer_tags", "interactions", "ratings", "tasks", "customer_merges"):
        strict = conn.execute("SELECT strict FROM pragma_table_list WHERE name = ?", (t,)).fetchone()[0]
        assert strict == 1, t



def test_customer_show_reads_ratings_and_tasks_off_indexes(conn):
    """A customer with thousands of ratings and tasks: the latest five
    ratings and the open tasks come from an index, nothing is sorted."""
    plans = []
    for sql in ("SELECT coalesce(sum(score), 0), count(*) FROM ratings WHERE customer_id = ?",
                "SELECT id, at, score, comment FROM ratings WHERE customer_id = ? ORDER BY at DESC, id DESC LIMIT 5",
                "SELECT id, due, text FROM tasks WHERE customer_id = ? AND done_at IS NULL ORDER BY due, id"):
        plans.append(" | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, (1,))))
    assert "COVERING INDEX ratings_customer_at" in plans[0], plans[0]
    assert "ratings_customer_at" in plans[1] and "TEMP B-TREE" not in plans[1], plans[1]
    assert "tasks_customer_open" in plans[2] and "TEMP B-TREE" not in plans[2], plans[2]
