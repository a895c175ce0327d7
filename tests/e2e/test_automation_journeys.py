"""Browser journeys of an admin: create an automation rule, see it fire in the log when a contact is created; set
up a web form, copy its token (shown once), and post a submission with it over real HTTP."""
import json
import re
import shutil
import urllib.request
from pathlib import Path

import pytest
from sqlmodel import select

from crm.auth import find_user_by_email
from crm.contacts import create_contact
from crm.db import session_scope
from crm.models import AutomationFiring, AutomationRule, ContactInput, WebForm
from crm.permissions import load_actor
from crm.webforms.forms import hash_token
from tests.e2e.conftest import CHROMIUM, DOCS_SHOTS, SHOTS, choose, expect, full_screenshot, settle, sign_in

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}: browser journeys need it"),
]

WAIT = 60_000
RULE = "Browser: greet new contacts"


def _shot(page, name: str) -> None:
    shot = SHOTS / name
    full_screenshot(page, shot)
    shutil.copy(shot, DOCS_SHOTS / shot.name)


def _open(page, server, title: str) -> None:
    sign_in(page, server, "admin")
    page.get_by_role("heading", name="Home").wait_for()
    page.get_by_test_id("stSidebar").get_by_role("link", name=title).click()
    page.locator("h1", has_text=title).wait_for()
    settle(page)


def test_an_admin_creates_a_rule_and_sees_it_fire(page, server, db):
    _open(page, server, "Automations")
    page.get_by_role("tab", name="New rule").click()
    choose(page, "When", 0, "A contact is created")
    choose(page, "Then", 0, "Notify the owner")
    page.get_by_label("Name").last.fill(RULE)
    page.get_by_label("Message").last.fill("Say hello")
    _shot(page, "automations_new_rule_admin.png")
    page.get_by_role("button", name="Create rule").click()
    page.get_by_text(f"Created the rule {RULE}").wait_for(timeout=WAIT)
    with session_scope(db) as s:
        rule = s.exec(select(AutomationRule).where(AutomationRule.name == RULE)).one()
        assert (rule.trigger, rule.action, rule.action_params) == ("contact_created", "notify_owner",
                                                                     {"message": "Say hello"})
        rep = find_user_by_email(s, server.logins["rep"])
        contact = create_contact(session=s, actor=load_actor(s, rep.id),
                                 data=ContactInput(first_name="Browser", last_name="Greeted")).id
    with session_scope(db) as s:
        firing = s.exec(select(AutomationFiring).where(AutomationFiring.rule_id == rule.id)).one()
    assert (firing.record_id, firing.outcome) == (contact, "ok")
    page.get_by_test_id("stSidebar").get_by_role("link", name="Automations").click()  # a new run reads again
    settle(page)
    page.get_by_role("tab", name="Rules").click()
    expect(page.get_by_role("tabpanel").get_by_test_id("stDataFrame").first).to_be_visible()
    _shot(page, "automations_rules_admin.png")
    page.get_by_role("tab", name="Firing log").click()
    settle(page)
    expect(page.get_by_text(re.compile(r"firings?, newest first\."))).to_be_visible()
    _shot(page, "automations_log_admin.png")


def test_an_admin_sets_up_a_web_form_and_posts_with_its_token(page, server, db):
    _open(page, server, "Admin")
    page.get_by_role("tab", name="Web forms").click()
    page.get_by_text("Add a web form").click()
    form = page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Add web form"))
    form.get_by_label("Name", exact=True).fill("Browser sign-up")
    form.get_by_label("Key", exact=True).fill("browser-signup")
    page.get_by_role("button", name="Add web form").click()
    page.get_by_text("Copy this token now").wait_for(timeout=WAIT)
    token = page.get_by_test_id("stCode").first.inner_text().strip()
    with session_scope(db) as s:
        stored = s.exec(select(WebForm).where(WebForm.key == "browser-signup")).one()
        assert stored.token_hash == hash_token(token)
    _shot(page, "admin_webforms_token.png")
    body = json.dumps({"email": "browser.signup@example.com", "first_name": "Bea"}).encode()
    request = urllib.request.Request(f"{server.url}/api/forms/browser-signup", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "X-Form-Token": token})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200 and json.loads(answer.read()) == {"ok": True}
    page.get_by_test_id("stSidebar").get_by_role("link", name="Admin").click()  # the next run
    settle(page)
    page.get_by_role("tab", name="Web forms").click()
    settle(page)
    expect(page.get_by_text("Copy this token now")).to_have_count(0)
    _shot(page, "admin_webforms_list.png")
