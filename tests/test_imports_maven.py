"""The real Maven CRM export imports completely: every problem in it is reported, none crashes or is silently fixed.

../shared/data/maven-crm is a third party's B2B sales data set (85 accounts, 35 agents, 7 products, 8,800 deals)
with its quirks: a misspelt sector ("technolgy"), a misspelt country ("Philipines"), an ambiguous one ("Korea"),
the product "GTXPro" in the pipeline for the catalogue's "GTX Pro", and open deals without account, close date or
value. The first pass reports them; a second pass changes nothing; a third, with explicit value fixes, lands the rest.
"""
import csv as csvlib
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm.db import read_scope
from crm.models import Company, CustomFieldValue, Deal, DealLineItem, DealStageHistory, Product, Team, User
from tests.test_imports import run

MAVEN = Path(__file__).resolve().parents[2] / "shared" / "data" / "maven-crm"
pytestmark = pytest.mark.skipif(not (MAVEN / "sales_pipeline.csv").exists(),
                                reason=f"the Maven CRM data set is not at {MAVEN}")

MAPPINGS = {
    "users": ("sales_teams.csv", {
        "columns": {"sales_agent": "full_name", "manager": "manager", "regional_office": "team"},
        "options": {"email_domain": "maven.example", "create_teams": True, "create_managers": True}}),
    "companies": ("accounts.csv", {
        "columns": {"account": "name", "sector": "industry", "year_established": "custom:year_established",
                    "revenue": "annual_revenue", "employees": "employees", "office_location": "country",
                    "subsidiary_of": "parent"},
        "custom_fields": {"year_established": {"label": "Year established", "type": "number"}},
        "scale": {"revenue": 1_000_000},  # the data dictionary: revenue is in millions of USD
        "options": {"match_company_by_name": True}}),
    "products": ("products.csv", {"columns": {"product": "name", "series": "series", "sales_price": "list_price"}}),
    "deals": ("sales_pipeline.csv", {
        "columns": {"opportunity_id": "external_id", "sales_agent": "owner", "product": "product", "account": "company",
                    "deal_stage": "stage", "engage_date": "opened_at", "close_date": "closed_at",
                    "close_value": "amount"},
        "values": {"deal_stage": {"Prospecting": "Qualification", "Engaging": "Discovery", "Won": "Closed won",
                                  "Lost": "Closed lost"}}}),
}
FIXES = {"companies": {"sector": {"technolgy": "technology"},
                       "office_location": {"Philipines": "Philippines", "Korea": "South Korea"}},
         "deals": {"product": {"GTXPro": "GTX Pro"}}}
BAD_ACCOUNTS = ["Acme Corporation", "Bioholding", "Bluth Company", "Codehow", "Conecom", "Doncon", "Donquadtech",
                "Globex Corporation", "Hottechi", "Iselectrics", "Konex", "Rangreen", "Rundofase", "Zencorporation"]
TECHNOLGY = "unknown industry 'technolgy' (did you mean 'Technology'?); a new industry must not look like a " \
            "misspelt known one"
ACME = "unknown company 'Acme Corporation'; row 2 of this file, which would have created it, was rejected"


def import_all(engine, who, tmp, fixes=None) -> dict:
    out = {}
    for entity, (name, mapping) in MAPPINGS.items():
        if fixes and entity in fixes:
            mapping = {**mapping, "values": {**mapping.get("values", {}), **fixes[entity]}}
        out[entity] = run(engine, entity, (MAVEN / name).read_bytes(), who=who, mapping=mapping, tmp=tmp,
                          filename=name)
    return out


def counts(summary) -> tuple:
    return summary.created, summary.updated, summary.unchanged, summary.rejected


def pipeline_rows() -> list[dict]:
    with open(MAVEN / "sales_pipeline.csv", newline="", encoding="utf-8") as f:
        return list(csvlib.DictReader(f))


def test_maven_imports_completely_reports_every_problem_and_reimports_as_a_no_op(engine, admin, tmp_path):
    first = import_all(engine, admin, tmp_path)
    assert counts(first["users"]) == (35, 0, 0, 0)
    assert first["users"].also_created == {"team": 3, "user (manager)": 6}
    assert counts(first["products"]) == (7, 0, 0, 0)
    assert counts(first["companies"]) == (71, 0, 0, 14)
    assert Counter((p.column, p.reason) for p in first["companies"].problems) == {
        ("sector", TECHNOLGY): 12, ("subsidiary_of", ACME): 4,
        ("office_location", "unknown country 'Philipines' (did you mean 'Philippines'?)"): 1,
        ("office_location", "unknown country 'Korea' (did you mean 'North Korea' or 'South Korea'?)"): 1}
    accounts = [r["account"] for r in csvlib.DictReader(open(MAVEN / "accounts.csv", newline="", encoding="utf-8"))]
    assert sorted({accounts[p.row - 2] for p in first["companies"].problems}) == BAD_ACCOUNTS

    deals = first["deals"]
    assert counts(deals) == (6173, 0, 0, 2627)
    # An independent count: a deal is rejected exactly when its product is misspelt or its account was rejected.
    rows = pipeline_rows()
    expected = {i + 2 for i, r in enumerate(rows) if r["product"] == "GTXPro" or r["account"] in BAD_ACCOUNTS}
    assert {p.row for p in deals.problems} == expected
    by_reason = Counter(p.reason.split(" (did")[0] for p in deals.problems)
    assert by_reason["unknown product 'GTXPro'"] == 1480
    assert sum(n for reason, n in by_reason.items() if reason.startswith("unknown company")) == 1380
    assert {p.reason for p in deals.problems if p.column == "product"} == {
        "unknown product 'GTXPro' (did you mean 'GTX Pro'?)"}
    assert any(w.startswith("1203 rows: no company") for w in deals.warnings)  # open deals without an account
    assert Path(deals.error_file).read_bytes().decode("utf-8-sig").count("\r\n") == 1 + len(deals.problems)

    second = import_all(engine, admin, tmp_path)
    assert [counts(second[e])[:2] for e in MAPPINGS] == [(0, 0)] * 4
    assert [second[e].rejected for e in MAPPINGS] == [0, 14, 0, 2627]

    fixed = import_all(engine, admin, tmp_path, fixes=FIXES)
    assert counts(fixed["companies"]) == (14, 0, 71, 0)
    assert counts(fixed["deals"]) == (2627, 0, 6173, 0)
    with read_scope(engine) as s:
        def total(model, *where) -> int:
            return s.execute(select(func.count()).select_from(model).where(*where)).scalar()

        assert (total(Company), total(Product), total(Team), total(User, User.id != admin.id)) == (85, 7, 3, 41)
        assert total(User, User.password_hash.is_not(None), User.id != admin.id) == 0
        assert total(CustomFieldValue) == 85
        status = dict(s.execute(select(Deal.status, func.count()).group_by(Deal.status)).all())
        assert status == {"won": 4238, "lost": 2473, "open": 2089}
        assert total(DealLineItem) == 8800
        assert total(DealStageHistory) == 2 * (4238 + 2473) + 2089
        won_value = s.execute(select(func.sum(Deal.amount)).where(Deal.status == "won")).scalar()
    assert won_value == sum(float(r["close_value"]) for r in rows if r["deal_stage"] == "Won")
