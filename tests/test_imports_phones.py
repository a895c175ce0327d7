"""Phones checked ahead in a worker process give exactly what checking each row in place gives."""
import time
from concurrent.futures import wait

import pytest
from sqlalchemy import select

import crm.imports.phones as phones
from crm.db import read_scope
from crm.models import Contact
from tests.test_imports import csv, run

FILE = csv(
    "Contact ID,First name,Last name,Phone,Country",
    "P1,Anna,Smith,(201) 555-0123,US",
    "P2,Ben,Bar,081 234 5678,TH",
    "P3,Cy,Cole,۰۹۱۲ ۳۴۵ ۶۷۸۹,IR",
    "P4,Dee,Dale,12,US",  # too short: refused
    "P5,Eli,Eck,+44 20 7946 0958,",  # international, no country
    "P6,Fay,Fox,020 7946 0958,",  # national, no country: refused
    "P7,Gil,Gray,(201) 555-0123,Thailand",  # the same digits read as Thai: refused
)


def _slow_worker(pairs):
    """Stands in for the worker's function: still busy when the import needs the answers."""
    time.sleep(3)
    return {}


def _result(engine, tmp_path, monkeypatch, *, ahead: bool, answered: list | None = None, settle: bool = True):
    monkeypatch.setattr(phones, "MIN_ROWS", 0 if ahead else 10**9)
    if settle:  # let the worker finish first, so that every answer can come from it
        started = phones.PhoneChecks.__init__

        def init(self, *args):
            started(self, *args)
            wait(self._futures)

        monkeypatch.setattr(phones.PhoneChecks, "__init__", init)
    if answered is not None:
        original = phones.PhoneChecks.get

        def get(self, pair):
            result = original(self, pair)
            answered.append(pair)
            return result

        monkeypatch.setattr(phones.PhoneChecks, "get", get)
    summary = run(engine, "contacts", FILE, tmp=tmp_path)
    with read_scope(engine) as s:
        stored = s.exec(select(Contact.external_id, Contact.phone).order_by(Contact.external_id)).all()
    return summary.created, [(p.row, p.column, p.reason) for p in summary.problems], stored


@pytest.mark.parametrize("ahead", [False, True])
def test_checked_ahead_or_in_place_gives_the_same_rows_and_reasons(sqlite_engine, tmp_path, monkeypatch, ahead):
    answered = []
    created, problems, stored = _result(sqlite_engine, tmp_path, monkeypatch, ahead=ahead, answered=answered)
    assert len(answered) == (7 if ahead else 0)  # every row's phone came from the worker, or none did
    assert created == 4
    assert [(row, column) for row, column, _ in problems] == [(5, "Phone"), (7, "Phone"), (8, "Phone")]
    assert stored == [("P1", "+12015550123"), ("P2", "+66812345678"), ("P3", "+989123456789"),
                      ("P5", "+442079460958")]


def test_a_dead_worker_only_costs_speed(sqlite_engine, tmp_path, monkeypatch):
    def broken(pairs):
        raise RuntimeError("worker died")

    monkeypatch.setattr(phones, "normalize_phones", broken)
    created, problems, stored = _result(sqlite_engine, tmp_path, monkeypatch, ahead=True)
    assert created == 4 and len(problems) == 3 and stored[0] == ("P1", "+12015550123")


def test_a_worker_still_starting_never_holds_the_import_up(sqlite_engine, tmp_path, monkeypatch):
    monkeypatch.setattr(phones, "normalize_phones", _slow_worker)
    answered = []
    created, problems, stored = _result(sqlite_engine, tmp_path, monkeypatch, ahead=True, answered=answered,
                                        settle=False)
    assert answered == []  # no answer was ready, so every phone was checked in place ...
    assert created == 4 and [(row, column) for row, column, _ in problems] == [(5, "Phone"), (7, "Phone"),
                                                                               (8, "Phone")]
    assert stored[:3] == [("P1", "+12015550123"), ("P2", "+66812345678"), ("P3", "+989123456789")]
