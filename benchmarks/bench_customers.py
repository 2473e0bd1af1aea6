"""Customer commands on a 100k-customer database, against Python start-up.

Builds a seeded database of 100,000 customers (CJK and Latin names, tags,
some interactions, ratings and tasks) in a temporary directory, then times
each command as a real process (median of 9 rounds after one warm-up; a
round runs every command once) next to ``python -c "import typer"`` run in
the same rounds; "x baseline" is the median of each round's ratio.  The
goal: --help and a list or show command within 1.5x of that baseline.
``order list`` and ``report sales`` find no orders here: they are there for
their start-up (each imports only its own group's module).

    python benchmarks/bench_customers.py [--customers N] [--runs 9] [--keep DIR]

Last runs (2026-11-25; Python 3.11.7, SQLite 3.40.1, 2 CPUs shared with
other work, load average 1.4-2.2; two runs of 15 rounds, bytecode written):

    command                                          median ms   x baseline
    python -c "import typer"  (baseline)                 98         1.00
    salescrm --help                                   101-113     1.05-1.18
    salescrm customer list --limit 20                 141-147     1.37-1.40
    salescrm customer list --search 王 --limit 20     123-157     1.32-1.40
    salescrm customer list --search zzz --limit 20    182-185     1.80-1.85  (no match: full scan)
    salescrm customer show 50000                      130-143     1.41-1.46
    salescrm order list --limit 20                    137-140     1.46-1.48
    salescrm report sales                             144-148     1.48-1.56

Customer 50000 has ~16,700 interactions, 4,000 ratings and 500 open tasks:
about 15-20 ms of ``show`` is its queries and rows, not start-up.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from salescrm import db, validate
from salescrm.customers import Filters, query_plan

SURNAMES_CJK = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN_CJK = ["芳", "伟", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "艳", "勇", "杰", "娟", "涛", "明", "超", "秀英", "华", "慧"]
FIRST = ["Ann", "Bob", "Carla", "David", "Eva", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kenji", "Lena",
         "Marta", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sven", "Tariq"]
LAST = ["Lee", "Smith", "García", "Müller", "Rossi", "Novak", "Silva", "Kim", "Nguyen", "Brown", "Dubois",
        "Jensen", "Kowalski", "Ivanova", "Tanaka", "Okafor"]
CITIES = [("上海", "East"), ("北京", "North"), ("广州", "South"), ("成都", "West"), ("London", "West"),
          ("Leeds", "North"), ("Paris", "West"), ("Lyon", "South"), ("Berlin", "East"), ("Hamburg", "North")]
SEGMENTS = ["retail", "wholesale", "online", "enterprise"]
SOURCES = ["referral", "web", "fair", "cold call", "partner"]
OWNERS = ["li", "sam", "maria", "kenji", "olu", "petra"]
TAGS = ["vip", "asia", "eu", "late payer", "newsletter", "reseller"]
COMPANY_WORDS = ["贸易", "科技", "Trading", "Supplies", "Foods", "Tools", "Textiles", "Logistics"]


def build(path: Path, n: int, seed: int = 42) -> int:
    """Create the database with ``n`` customers; returns the id shown."""
    db.connect(path).close()  # schema, application id, WAL
    rng = random.Random(seed)
    now = "2026-01-01T00:00:00Z"
    customers, tags = [], []
    for i in range(1, n + 1):
        if rng.random() < 0.4:
            name = rng.choice(SURNAMES_CJK) + rng.choice(GIVEN_CJK)
        else:
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        company = None
        if rng.random() < 0.6:
            company = f"{rng.choice(LAST)} {rng.choice(COMPANY_WORDS)} {rng.randrange(1000)}"
        city, region = rng.choice(CITIES)
        email = f"user{i}.{rng.randrange(10**6)}@example.com"
        phone = "+" + str(rng.choice([44, 86, 33, 49])) + str(rng.randrange(10**9, 10**10))
        created = f"20{rng.randrange(18, 26)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T10:00:00Z"
        customers.append((
            i, name, validate.name_key(name), company, validate.name_key(company) if company else None,
            email, email.casefold(), phone, city, region, rng.choice(SEGMENTS), rng.choice(SOURCES),
            rng.choice(OWNERS), rng.randrange(0, 50_000) * 100, rng.choice([14, 30, 60]), created, created,
        ))
        for tag in rng.sample(TAGS, rng.choice([0, 0, 0, 1, 1, 2])):
            tags.append((i, tag))
    target = n // 2
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO customers (id, name, name_key, company, company_key, email, email_key, phone, city,"
        " region, segment, source, owner, credit_limit, payment_terms_days, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", customers)
    conn.executemany("INSERT INTO customer_tags (customer_id, tag) VALUES (?, ?)", tags)
    conn.executemany(
        "INSERT INTO interactions (customer_id, kind, text, at, os_user, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        [(rng.randrange(1, n + 1) if k % 3 else target, rng.choice(["call", "email", "visit"]),
          f"interaction {k}", f"2025-{k % 12 + 1:02d}-{k % 28 + 1:02d}T09:00:00Z", "bench", now)
         for k in range(50_000)])
    conn.executemany("INSERT INTO ratings (customer_id, score, comment, at) VALUES (?, ?, ?, ?)",
                     [(rng.randrange(1, n + 1) if k % 5 else target, rng.randrange(1, 6), None, now)
                      for k in range(20_000)])
    conn.executemany("INSERT INTO tasks (customer_id, due, text, created_at) VALUES (?, ?, ?, ?)",
                     [(rng.randrange(1, n + 1) if k % 10 else target, f"2026-{k % 12 + 1:02d}-15",
                       f"task {k}", now) for k in range(5_000)])
    conn.execute("COMMIT")
    conn.close()
    return target


def salescrm_command() -> list[str]:
    exe = Path(sys.executable).with_name("salescrm")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("salescrm")
    return [found] if found else [sys.executable, "-m", "salescrm"]


def run_once(cmd: list[str], env: dict[str, str]) -> float:
    """Wall time in ms of one run, output piped."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode()[:300]}")
    return elapsed * 1000


def time_commands(cases: list[tuple[str, list[str]]], runs: int, env: dict[str, str]) -> list[list[float]]:
    """``runs`` rounds after one warm-up round; each round runs every command
    once, so a busy moment hits all of them alike.  Returns, per command, the
    ms of every round."""
    for _, cmd in cases:
        run_once(cmd, env)
    samples: list[list[float]] = [[] for _ in cases]
    for _ in range(runs):
        for i, (_, cmd) in enumerate(cases):
            samples[i].append(run_once(cmd, env))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--keep", type=Path, help="build the database in this directory and keep it")
    args = parser.parse_args()

    tmp = None
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        where = args.keep
    else:
        tmp = tempfile.TemporaryDirectory(prefix="salescrm-bench-")
        where = Path(tmp.name)
    path = where / "bench.db"
    path.unlink(missing_ok=True)
    started = time.perf_counter()
    target = build(path, args.customers)
    print(f"built {args.customers:,} customers in {time.perf_counter() - started:.1f} s "
          f"({path.stat().st_size / 1e6:.1f} MB)")

    conn = db.connect(path, write=False)
    for label, filters, sort in [("--search 王", Filters(search="王"), None),
                                 ("--search zzz", Filters(search="zzz"), None),
                                 ("--tag vip --sort -created_at", Filters(tags=["vip"]), "-created_at"),
                                 ("--region East", Filters(region="East"), None)]:
        print(f"plan {label}: " + " | ".join(query_plan(conn, filters, sort=sort)))
    conn.close()

    env = dict(os.environ, NO_COLOR="1", SALESCRM_DB=str(path))
    env.pop("SALESCRM_DEBUG", None)
    # An installed package runs from bytecode (pip compiles it, and typer's is
    # there): let the warm-up runs write salescrm's too, or every timed run
    # would recompile it from source.
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        print("note: PYTHONDONTWRITEBYTECODE unset for the timed commands (bytecode as installed)")
    crm = salescrm_command()
    cases = [
        ('python -c "import typer"  (baseline)', [sys.executable, "-c", "import typer"]),
        ("salescrm --help", [*crm, "--help"]),
        ("salescrm customer list --limit 20", [*crm, "customer", "list", "--limit", "20"]),
        ("salescrm customer list --search 王 --limit 20", [*crm, "customer", "list", "--search", "王",
                                                           "--limit", "20"]),
        ("salescrm customer list --search zzz --limit 20  (no match: full scan)",
         [*crm, "customer", "list", "--search", "zzz", "--limit", "20"]),
        (f"salescrm customer show {target}", [*crm, "customer", "show", str(target)]),
        ("salescrm order list --limit 20  (no orders: start-up)", [*crm, "order", "list", "--limit", "20"]),
        ("salescrm report sales  (no orders: start-up)", [*crm, "report", "sales"]),
    ]
    load = os.getloadavg()
    samples = time_commands(cases, args.runs, env)
    base = samples[0]
    width = max(len(label) for label, _ in cases)
    print(f"\nmedian of {args.runs} runs, {args.customers:,} customers, Python {sys.version.split()[0]}, "
          f"SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs, load average {load[0]:.2f} "
          f"before / {os.getloadavg()[0]:.2f} after")
    print(f"{'command'.ljust(width)}  {'median ms':>9}  {'x baseline':>10}")
    for (label, _), runs in zip(cases, samples):
        # the ratio is the median of each round's ratio: a busy round raises both
        ratio = statistics.median(ms / b for ms, b in zip(runs, base))
        print(f"{label.ljust(width)}  {statistics.median(runs):9.1f}  {ratio:10.2f}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
