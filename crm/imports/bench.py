"""The import benchmark: generated contacts through the whole importer (read, map, validate, upsert, audit, index).

The file is like a real CRM export: international names, 97% with an email, 88% with a phone in national or
international format for their country (all valid), 70% at a known company, 90% with an owner by email.
"""
import csv
import io
import random
import tempfile
import time
from pathlib import Path

import phonenumbers

from crm.db import make_engine, session_scope
from crm.imports.jobs import run_import
from crm.models import Company, User
from crm.schema import seed_reference_data, upgrade_schema

_FIRST = ("Anna", "Ben", "Chloé", "Dmitri", "Emma", "Farid", "Grace", "Hiro", "Isabel", "Jonas", "Kanya", "Liam",
          "María", "Niloufar", "Oliver", "Priya", "Quentin", "Rosa", "สมชาย", "Sara", "Tomás", "伟", "Yara", "Zoe")
_LAST = ("Smith", "Müller", "García", "Rossi", "Dubois", "Kowalski", "Nguyen", "Tanaka", "Rahimi", "ใจดี", "王",
         "Johansson", "O'Brien", "Silva", "Novak", "Haddad", "Kim", "Patel", "Jones", "van Dijk")
_COUNTRIES = ("US", "GB", "DE", "FR", "TH", "IR", "CN", "BR", "IN", "AU", "NL", "ES")
_STAGES = ("subscriber", "lead", "mql", "sql", "opportunity", "customer")
COMPANIES, OWNERS = 2000, 50


def _phones(rng: random.Random, region: str, n: int) -> list[str]:
    """Valid mobile numbers of a region, written nationally or internationally."""
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    digits, out = str(example.national_number), []
    while len(out) < n:
        number = phonenumbers.PhoneNumber(country_code=example.country_code, national_number=int(
            digits[:-4] + f"{rng.randrange(10_000):04d}"))
        if phonenumbers.is_valid_number(number):
            style = rng.choice((phonenumbers.PhoneNumberFormat.NATIONAL, phonenumbers.PhoneNumberFormat.INTERNATIONAL))
            out.append(phonenumbers.format_number(number, style))
    return out


def contacts_csv(rows: int, seed: int) -> bytes:
    rng = random.Random(seed)
    phones = {c: _phones(rng, c, 200) for c in _COUNTRIES}
    buffer = io.StringIO()
    out = csv.writer(buffer)
    out.writerow(["Contact ID", "First name", "Last name", "Email", "Phone", "Job title", "Company", "City",
                  "Country", "Lifecycle stage", "Owner", "Lead score", "Opted in"])
    for i in range(rows):
        country = rng.choice(_COUNTRIES)
        company = rng.randrange(COMPANIES) if rng.random() < 0.7 else None
        domain = f"company{company}.example" if company is not None else rng.choice(("mail.example", "post.example"))
        out.writerow([
            f"C{i:07d}", rng.choice(_FIRST), rng.choice(_LAST),
            f"person{i}@{domain}" if rng.random() < 0.97 else "",
            rng.choice(phones[country]) if rng.random() < 0.88 else "",
            rng.choice(("CEO", "Buyer", "Engineer", "Head of IT", "")),
            f"Company {company}" if company is not None else "",
            rng.choice(("Berlin", "Bangkok", "Austin", "Tehran", "Lyon", "")), country, rng.choice(_STAGES),
            f"owner{rng.randrange(OWNERS)}@staff.example" if rng.random() < 0.9 else "",
            rng.randrange(101) if rng.random() < 0.5 else "", rng.choice(("yes", "no", ""))])
    return buffer.getvalue().encode("utf-8")


def _seed_people(engine) -> None:
    with session_scope(engine) as session:
        session.add_all(User(email=f"owner{i}@staff.example", full_name=f"Owner {i}", role="rep")
                        for i in range(OWNERS))
        session.add_all(Company(name=f"Company {i}", name_key=f"company {i}", domain=f"company{i}.example")
                        for i in range(COMPANIES))


def bench_import(*, rows: int = 100_000, seed: int = 1) -> dict:
    """Import `rows` generated contacts into a fresh SQLite file CRM; returns rows, seconds and rows_per_second."""
    data = contacts_csv(rows, seed)
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        upgrade_schema(engine)
        with session_scope(engine) as session:
            seed_reference_data(session)
        _seed_people(engine)
        start, cpu = time.perf_counter(), time.process_time()
        with session_scope(engine) as session:
            summary = run_import(session=session, actor=None, entity="contacts", source=data,
                                 filename="contacts.csv", error_dir=Path(folder))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        engine.dispose()
    # cpu_seconds is this process's CPU time: on a machine busy with other work it shows what one core does.
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_second": round(rows / seconds),
            "cpu_seconds": round(cpu, 2), "rows_per_cpu_second": round(rows / cpu),
            "created": summary.created, "rejected": summary.rejected}
