"""The model commands end to end, as scripts and cron use them, on a small data set brought in with `crm import`:
train prints a JSON summary against baselines, score writes a safe CSV, evaluate prints the champion's metrics."""
import csv
import sqlite3
import io
import json
import random
from datetime import date, timedelta

import pytest

from tests.test_cli import crm  # noqa: F401  (the fixture: `python -m crm` on a fresh database)

PRODUCTS = ["Core", "Analytics", "Support", "Training"]
START = date(2025, 1, 6)


def _write(path, header: list[str], rows: list[list]) -> str:
    buffer = io.StringIO()
    out = csv.writer(buffer)
    out.writerow(header)
    out.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return str(path)


@pytest.fixture
def imported(crm, tmp_path):  # noqa: F811
    """60 customers; 200 closed deals where big ones win less; orders where Core owners later buy Analytics."""
    rng = random.Random(4)
    crm("init")
    files = {
        "products": _write(tmp_path / "products.csv", ["Name", "List price"], [[p, 100] for p in PRODUCTS]),
        "contacts": _write(tmp_path / "contacts.csv", ["Contact ID", "First name", "Last name", "Email"],
                           [[f"C{i}", f"Ann{i}", "Buyer", f"c{i}@example.com"] for i in range(60)]),
    }
    deals = []
    for i in range(200):
        opened = START + timedelta(days=i * 2)
        amount = rng.choice([500, 1000, 5000, 20000])
        won = rng.random() < (0.7 if amount <= 1000 else 0.25)
        deals.append([f"D{i}", f"Deal {i}", "Closed won" if won else "Closed lost", amount, opened.isoformat(),
                      (opened + timedelta(days=30)).isoformat(), "" if won else "Price", f"c{i % 60}@example.com"])
    deals += [[f"O{i}", f"Open {i}", "Proposal", 1000, (START + timedelta(days=400 + i)).isoformat(), "", "",
               f"c{i}@example.com"] for i in range(10)]
    files["deals"] = _write(tmp_path / "deals.csv", ["Deal ID", "Title", "Stage", "Amount", "Opened at", "Closed at",
                                                     "Lost reason", "Contact"], deals)
    orders = []
    for i in range(60):
        day = START + timedelta(days=rng.randrange(300))
        orders.append([f"R{i}a", f"c{i}@example.com", day.isoformat(), "Core" if i % 2 else "Support"])
        if i % 2 and rng.random() < 0.6:
            orders.append([f"R{i}b", f"c{i}@example.com", (day + timedelta(days=40)).isoformat(), "Analytics"])
    files["orders"] = _write(tmp_path / "orders.csv", ["Order ID", "Customer email", "Order date", "Product"], orders)
    for entity in ("products", "contacts", "deals", "orders"):
        result = crm("import", entity, files[entity])
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["rejected"] == 0, result.stdout
    return crm


def test_train_score_and_evaluate_every_model_from_the_command_line(imported, tmp_path):
    crm = imported
    for model in ("win", "cross-sell"):
        trained = crm("train", model)
        assert trained.returncode == 0, trained.stderr
        summary = json.loads(trained.stdout)
        assert summary["version"] and summary["promoted"] is True  # the first version is the champion
        assert "model" in summary["metrics"] and len(summary["metrics"]) >= 2  # always against a baseline
        evaluated = crm("evaluate", model)
        assert evaluated.returncode == 0 and json.loads(evaluated.stdout)["version"] == summary["version"]
    # No imported contact became a customer in the last months: the lead model declines to train, and says so.
    lead = json.loads(crm("train", "lead").stdout)
    assert (lead["version"], lead["tier"]) == (None, "rules only") and "too few" in lead["split"]

    out = tmp_path / "win.csv"
    scored = crm("score", "win", "--out", str(out))
    assert scored.returncode == 0, scored.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert len(rows) == 10 and set(rows[0]) == {"id", "external_id", "probability"}
    assert {r["external_id"] for r in rows} == {f"O{i}" for i in range(10)}
    assert all(0 <= float(r["probability"]) <= 1 for r in rows)

    out = tmp_path / "analytics.csv"
    scored = crm("score", "cross-sell", "--product", "Analytics", "--out", str(out))
    assert scored.returncode == 0, scored.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert 0 < len(rows) < 60  # customers who already own Analytics are not scored
    with sqlite3.connect(crm.db) as conn:  # stored too, for segments' "cross-sell likelihood" condition
        stored = dict(conn.execute("SELECT record_id, probability FROM prediction_score "
                                   "WHERE model = 'cross-sell' AND entity = 'contact'").fetchall())
    assert stored == {int(r["id"]): float(r["probability"]) for r in rows}

    leads = crm("score", "lead")
    assert leads.returncode == 0 and json.loads(leads.stdout)["contacts"] == 60
    assert json.loads(leads.stdout)["source"].startswith("rules")  # no lead model, so the admin's rules


def test_scoring_before_training_says_what_to_do(crm):  # noqa: F811
    crm("init")
    result = crm("score", "win", "--out", "x.csv")
    assert result.returncode == 1 and "train" in result.stderr and "Traceback" not in result.stderr
