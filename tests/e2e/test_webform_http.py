"""The web-form endpoint over real HTTP, served by the running app (`streamlit run app.py`, the same process as the
pages): a submission creates and then fills a contact, a wrong token gets 401 and writes nothing, the rate limit
answers 429, and random payloads never get a 500. No browser needed."""
import json
import urllib.error
import urllib.request
from email.message import Message
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from sqlmodel import select

from crm.auth import find_user_by_email
from crm.db import read_scope, session_scope
from crm.models import BehaviorEvent, Contact
from crm.permissions import load_actor
from crm.webforms.forms import create_form
from tests.test_webforms import ANN, MAPPING, table_counts
from tests.test_webforms_http import ALLOWED, requests_

pytestmark = pytest.mark.e2e


def post(url: str, body: bytes, headers: dict) -> tuple[int, Message, dict]:
    """Status, headers (looked up ignoring case) and the JSON answer."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


@pytest.fixture(scope="module")
def forms(server, db):
    """Two forms on the app's database, set up by the demo admin: 'e2e-contact' (30 a minute), 'e2e-slow' (2)."""
    with session_scope(db) as s:
        admin = load_actor(s, find_user_by_email(s, server.logins["admin"]).id)
        return {key: create_form(session=s, actor=admin, key=key, name=key, mapping=MAPPING, rate_limit_per_minute=rate)
                for key, rate in (("e2e-contact", 30), ("e2e-slow", 2), ("e2e-fuzz", 10_000))}


def send(server, forms, key: str, fields: dict, *, token: str | None = None):
    return post(f"{server.url}/api/forms/{key}", json.dumps(fields).encode(),
                {"Content-Type": "application/json", "X-Form-Token": token or forms[key].token})


def test_the_app_serves_its_pages_and_the_form_api_from_one_process(server, forms):
    with urllib.request.urlopen(server.url + "/", timeout=30) as response:
        assert response.status == 200 and "text/html" in response.headers["Content-Type"]
    status, _, answer = post(f"{server.url}/api/forms/no-such-form", b"{}", {"Content-Type": "application/json"})
    assert (status, answer["field"]) == (404, None)


def test_a_submission_creates_the_contact_and_the_next_one_fills_it(server, forms, db):
    fields = {**ANN, "your-email": "e2e.ann@example.com"}
    status, _, answer = send(server, forms, "e2e-contact", fields)
    assert (status, answer) == (200, {"ok": True})
    # The second arrives as a plain HTML form would send it: urlencoded, the token in a hidden field.
    body = urlencode({**fields, "form_token": forms["e2e-contact"].token, "town": "Chiang Mai"}).encode()
    status, _, answer = post(f"{server.url}/api/forms/e2e-contact", body,
                             {"Content-Type": "application/x-www-form-urlencoded"})
    assert (status, answer) == (200, {"ok": True})
    with read_scope(db) as s:
        contact = s.exec(select(Contact).where(Contact.email == "e2e.ann@example.com")).one()
        events = s.exec(select(BehaviorEvent).where(BehaviorEvent.contact_id == contact.id)).all()
    assert (contact.first_name, contact.phone, contact.city, contact.source) == (
        "Ann", "+66812345678", "Chiang Mai", "form:e2e-contact")
    assert [e.properties["created"] for e in events] == [True, False]


def test_a_wrong_token_gets_401_and_nothing_is_written(server, forms, db):
    before = table_counts(db)
    status, _, answer = send(server, forms, "e2e-contact", {**ANN, "your-email": "e2e.eve@example.com"},
                             token="not-the-token")
    assert (status, answer["field"]) == (401, None) and "token" in answer["error"]
    status, _, _ = post(f"{server.url}/api/forms/e2e-contact", json.dumps(ANN).encode(),
                        {"Content-Type": "application/json"})  # no token at all
    assert status == 401
    assert table_counts(db) == before


def test_bad_input_gets_422_naming_the_field(server, forms, db):
    before = table_counts(db)
    status, _, answer = send(server, forms, "e2e-contact", {**ANN, "tel": "12"})
    assert (status, answer["field"]) == (422, "tel")
    assert table_counts(db) == before


def test_the_rate_limit_answers_429_with_retry_after(server, forms):
    answers = [send(server, forms, "e2e-slow", {**ANN, "your-email": f"e2e.r{i}@example.com"}) for i in range(3)]
    assert [a[0] for a in answers] == [200, 200, 429]
    assert 1 <= int(answers[2][1]["Retry-After"]) <= 60


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(request=requests_())
def test_random_payloads_over_http_never_get_a_500(server, forms, request):
    body, kind, token = request
    headers = {"Content-Type": kind} if kind else {}
    if token != "none":
        headers["X-Form-Token"] = forms["e2e-fuzz"].token if token in ("good", "in body") else "wrong"
    status, _, answer = post(f"{server.url}/api/forms/e2e-fuzz", body, headers)
    assert status in ALLOWED, answer
