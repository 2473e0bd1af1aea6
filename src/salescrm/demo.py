"""The demo database: realistic, seeded sample data (CJK names included)
that shows every part of salescrm.  No Typer, no Rich."""

from __future__ import annotations

import random
import sqlite3
from datetime import date, timedelta

from salescrm import customers, db, products, stock

# (name, company, email, phone, city, region, country, segment, source, owner, tags)
CUSTOMERS = [
    ("王芳", "上海茶叶贸易有限公司", "wang.fang@example.cn", "+86 138 0013 8000", "上海", "East", "CN", "wholesale", "referral", "li", ["vip"]),
    ("李伟", None, "li.wei@example.cn", "+86 139 1234 5678", "北京", "North", "CN", "retail", "online", "li", []),
    ("张敏", "杭州西湖茶馆", "zhang.min@example.cn", "+86 571 8888 1234", "杭州", "East", "CN", "horeca", "fair", "chen", ["tea-house"]),
    ("陈静", None, "chen.jing@example.cn", "+86 135 0000 1111", "广州", "South", "CN", "retail", "online", "chen", []),
    ("刘洋", "成都熊猫咖啡", "liu.yang@example.cn", "+86 28 6666 7777", "成都", "West", "CN", "horeca", "phone", "li", ["cafe"]),
    ("黄丽", None, "huang.li@example.cn", "+86 136 2222 3333", "深圳", "South", "CN", "retail", "online", "chen", []),
    ("佐藤 花子", "京都抹茶本舗", "hanako.sato@example.jp", "+81 75 123 4567", "京都", "Export", "JP", "wholesale", "fair", "smith", ["vip", "matcha"]),
    ("鈴木 一郎", None, "ichiro.suzuki@example.jp", "+81 90 1111 2222", "東京", "Export", "JP", "retail", "online", "smith", []),
    ("김민준", "서울 티하우스", "minjun.kim@example.kr", "+82 2 555 0101", "서울", "Export", "KR", "horeca", "referral", "smith", ["tea-house"]),
    ("이서연", None, "seoyeon.lee@example.kr", "+82 10 9999 8888", "부산", "Export", "KR", "retail", "online", "smith", []),
    ("Anna Schmidt", "Teehaus Schmidt GmbH", "anna@teehaus-schmidt.example", "+49 30 1234567", "Berlin", "Export", "DE", "wholesale", "fair", "smith", ["vip"]),
    ("James O'Brien", None, "james.obrien@example.co.uk", "07700 900123", "London", "Export", "GB", "retail", "online", "smith", []),
    ("Marie Dubois", "Salon de Thé Dubois", "marie@dubois.example.fr", "+33 1 42 68 53 00", "Paris", "Export", "FR", "horeca", "referral", "smith", ["tea-house"]),
    ("Carlos Méndez", None, "carlos.mendez@example.es", "+34 600 123 456", "Madrid", "Export", "ES", "retail", "phone", "smith", []),
    ("赵磊", "南京礼品公司", "zhao.lei@example.cn", "+86 25 8765 4321", "南京", "East", "CN", "corporate", "referral", "chen", ["gifts"]),
    ("孙悦", None, "sun.yue@example.cn", "+86 137 4444 5555", "西安", "West", "CN", "retail", "online", "li", []),
    ("周杰", "武汉长江茶业", "zhou.jie@example.cn", "+86 27 5555 6666", "武汉", "Central", "CN", "wholesale", "fair", "chen", []),
    ("吴婷", None, "wu.ting@example.cn", "+86 188 6666 7777", "苏州", "East", "CN", "retail", "online", "li", []),
    ("郑浩", "厦门海风酒店", "zheng.hao@example.cn", "+86 592 333 4444", "厦门", "South", "CN", "horeca", "phone", "chen", ["hotel"]),
    ("冯雪", None, "feng.xue@example.cn", "+86 186 7777 8888", "哈尔滨", "North", "CN", "retail", "online", "li", []),
    # a likely duplicate of 王芳 (same phone, different e-mail): for 'customer dupes'
    ("王 芳", "上海茶叶贸易有限公司", "fang.wang@example.cn", "+86 138 0013 8000", "上海", "East", "CN", "wholesale", "online", "li", []),
]

# (sku, name, category, kind, cost, price, tax %, reorder level, opening stock)
PRODUCTS = [
    ("GT-250", "龙井绿茶 250g", "tea", "goods", 320, 590, "13", 20, 200),
    ("GT-100", "碧螺春 100g", "tea", "goods", 410, 880, "13", 15, 120),
    ("OL-500", "大红袍乌龙 500g", "tea", "goods", 1250, 2680, "13", 10, 60),
    ("PU-357", "普洱茶饼 357g", "tea", "goods", 1800, 3900, "13", 8, 40),
    ("MT-30", "宇治抹茶 30g", "tea", "goods", 600, 1450, "13", 12, 8),
    ("WT-200", "White Peony 200g", "tea", "goods", 700, 1590, "13", 10, 90),
    ("MUG-01", "青花瓷马克杯", "teaware", "goods", 450, 1200, "13", 25, 150),
    ("POT-02", "紫砂壶 (Yixing teapot)", "teaware", "goods", 3500, 8800, "13", 5, 25),
    ("CUP-06", "品茗杯六只装", "teaware", "goods", 900, 2400, "13", 10, 4),
    ("TRAY-1", "竹制茶盘", "teaware", "goods", 1600, 4200, "13", 5, 30),
    ("GIFT-S", "节日礼盒 (small)", "gifts", "goods", 1500, 3600, "13", 10, 70),
    ("GIFT-L", "节日礼盒 (large)", "gifts", "goods", 3000, 6800, "13", 5, 35),
    ("CLASS-1", "Tea tasting class (1 h)", "services", "service", 0, 5000, "6", 0, 0),
]

SELLER = {
    "seller.name": "龙井茶庄 Dragon Well Tea Co.",
    "seller.address": "西湖区龙井路 18 号\\n310013 杭州 Hangzhou, China",
    "seller.email": "sales@dragonwell.example",
    "seller.phone": "+86 571 8700 0000",
    "seller.tax_id": "91330106MA2DEMO00X",
    "currency": "CNY",
}

INTERACTION_TEXTS = [
    ("call", "Asked for the spring catalogue"),
    ("email", "Sent the new price list"),
    ("meeting", "Tasting session at their shop"),
    ("visit", "Visited the warehouse with the buyer"),
    ("note", "Prefers delivery on Tuesdays"),
]


def build_catalogue(conn: sqlite3.Connection, rng: random.Random, today: date) -> tuple[list[int], list[str]]:
    """Customers (with interactions, ratings and tasks), products and stock."""
    ids = []
    for i, (name, company, email, phone, city, region, country, segment, source, owner, tags) in enumerate(CUSTOMERS):
        fields = dict(company=company, email=email, phone=phone, city=city, region=region,
                      country=country, segment=segment, source=source, owner=owner)
        if segment in ("wholesale", "corporate"):
            fields["credit_limit"] = 500_000
            fields["payment_terms_days"] = 30
        cid = customers.add(conn, name, tags=tags, **fields)
        ids.append(cid)
        for kind, text in rng.sample(INTERACTION_TEXTS, rng.randint(0, 3)):
            when = today - timedelta(days=rng.randint(1, 200))
            customers.log(conn, cid, kind, text, at=when.isoformat())
        if rng.random() < 0.6:
            customers.rate(conn, cid, rng.randint(3, 5), "Pays on time" if rng.random() < 0.5 else None)
        if i % 4 == 0:
            customers.remind(conn, cid, today + timedelta(days=rng.randint(-5, 10)),
                             "Send the new price list", today=today)
    skus = []
    for sku, name, category, kind, cost, price, tax, reorder, opening in PRODUCTS:
        products.add(conn, sku=sku, name=name, category=category, kind=kind, cost=cost, price=price,
                     tax_rate=tax, reorder_level=reorder)
        if opening:
            stock.receive(conn, sku, opening, note="Opening stock")
        skus.append(sku)
    return ids, skus


def build(conn: sqlite3.Connection, *, seed: int = 7, today: date | None = None) -> dict[str, int]:
    """Fill an empty database with the demo data, inside the caller's
    transaction.  Returns counts of what was created."""
    assert conn.in_transaction, "demo.build must run inside db.write_tx"
    from salescrm import settings

    today = today or date.today()
    rng = random.Random(seed)
    for key, value in SELLER.items():
        settings.set(conn, key, value)
    customer_ids, skus = build_catalogue(conn, rng, today)
    counts = {"customers": len(customer_ids), "products": len(skus)}
    counts.update(build_orders(conn, rng, today, customer_ids, skus))
    return counts


def _at(day: date, hour: int) -> str:
    return f"{day.isoformat()}T{hour:02d}:00:00"


def build_orders(conn: sqlite3.Connection, rng: random.Random, today: date,
                 customer_ids: list[int], skus: list[str]) -> dict[str, int]:
    """About 160 orders over the last 15 months, in every state: closed
    history, unpaid and part-paid receivables, returns, cancellations, and
    recent drafts, confirmed, partly shipped and shipped orders."""
    from salescrm import orders

    goods = [p for p in PRODUCTS if p[3] == "goods"]
    channels = ["retail", "online", "phone", "partner"]
    statuses: dict[str, int] = {}
    returns = 0
    n_orders = 160
    start = today - timedelta(days=450)
    recent = 16  # the last fortnight: drafts, confirmed and shipping orders
    days = sorted([start + timedelta(days=rng.randint(0, 435)) for _ in range(n_orders - recent)]
                  + [today - timedelta(days=rng.randint(0, 14)) for _ in range(recent)])
    for i, day in enumerate(days):
        age = (today - day).days
        cid = rng.choice(customer_ids[:-1])  # the duplicate customer has no orders
        lines = []
        for sku, *_rest in rng.sample(goods, rng.randint(1, 4)):
            qty = rng.randint(1, 6)
            spec = f"{sku}:{qty}"
            if rng.random() < 0.15:
                spec += "-5%"
            lines.append(spec)
        if rng.random() < 0.05:
            lines.append("CLASS-1:1")
        ref = orders.create(conn, customer=cid, lines=lines, channel=rng.choice(channels),
                            salesperson=rng.choice(["li", "chen", "smith"]), order_date=day,
                            shipping=rng.choice([0, 0, 800, 1500]))
        if age < 4 and rng.random() < 0.7:
            statuses["draft"] = statuses.get("draft", 0) + 1
            continue
        if rng.random() < 0.05:
            orders.cancel(conn, ref.number, reason="Customer changed their mind")
            statuses["cancelled"] = statuses.get("cancelled", 0) + 1
            continue
        _restock(conn, ref.number, day)
        orders.confirm(conn, ref.number, at=_at(day, 10), override="demo data")
        if age < 6:
            statuses["confirmed"] = statuses.get("confirmed", 0) + 1
            continue
        ship_day = day + timedelta(days=rng.randint(1, 3))
        order_lines = orders.lines(conn, ref.number)
        if age < 12 and len(order_lines) > 1:
            first = order_lines[0]
            orders.ship(conn, ref.number, lines=[(first["sku"], first["qty"])], carrier="SF Express",
                        tracking=f"SF{rng.randint(10**9, 10**10 - 1)}", at=_at(ship_day, 15))
            statuses["partially_shipped"] = statuses.get("partially_shipped", 0) + 1
            continue
        orders.ship(conn, ref.number, carrier=rng.choice(["SF Express", "DHL", "EMS"]),
                    tracking=f"T{rng.randint(10**9, 10**10 - 1)}", at=_at(ship_day, 15))
        if age < 15:
            statuses["shipped"] = statuses.get("shipped", 0) + 1
            continue
        orders.deliver(conn, ref.number, at=_at(ship_day + timedelta(days=2), 11))
        total = orders.get(conn, ref.number)["total_cents"]
        roll = rng.random()
        pay_day = day + timedelta(days=rng.randint(0, 40))
        method = rng.choice(["card", "transfer", "cash"])
        if roll < 0.12 and age < 150:
            pass  # unpaid: a receivable, overdue when past its due date
        elif roll < 0.24 and total > 100:
            orders.pay(conn, ref.number, amount=total // 2, method=method, at=_at(pay_day, 12))
        else:
            half = total // 2
            if half and rng.random() < 0.3:
                orders.pay(conn, ref.number, amount=half, method=method, at=_at(pay_day, 12))
                orders.pay(conn, ref.number, amount=total - half, method=method,
                           at=_at(pay_day + timedelta(days=7), 12))
            else:
                orders.pay(conn, ref.number, amount=total, method=method, at=_at(pay_day, 12))
            if rng.random() < 0.06:
                line = orders.lines(conn, ref.number)[0]
                orders.return_items(conn, ref.number, lines=[(line["sku"], 1)], refund=True,
                                    method=method, reason="Damaged in transit",
                                    at=_at(pay_day + timedelta(days=3), 9))
                returns += 1
        if i % 3 == 0:
            orders.issue_invoice(conn, ref.number, at=ship_day)
        status = orders.get(conn, ref.number)["status"]
        statuses[status] = statuses.get(status, 0) + 1
    return {"orders": n_orders, "returns": returns,
            **{f"orders_{k}": v for k, v in sorted(statuses.items())}}


def _restock(conn: sqlite3.Connection, number: str, day: date) -> None:
    """Receive a purchase order when the stock would not cover this order."""
    from salescrm import orders

    for line in orders.lines(conn, number):
        p = products.get(conn, line["sku"])
        if p["kind"] != "goods":
            continue
        available = p["on_hand"] - p["reserved"]
        if available < line["qty"]:
            stock.receive(conn, p["sku"], max(50, line["qty"] * 5), note="Purchase order (demo)",
                          at=_at(day, 8))


__all__ = ["build", "db"]
