"""Driving the app with AppTest: start it, sign in, and check that nothing raised."""
from datetime import timedelta
from pathlib import Path

from streamlit.testing.v1 import AppTest

from crm.clock import utcnow
from crm.models import Role
from ui.session import LAST_SEEN, USER_ID

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PASSWORD = "correct horse battery staple"
EMAILS = {Role.ADMIN: "ada@example.com", Role.MANAGER: "max@example.com", Role.REP: "rita@example.com",
          Role.MARKETER: "mia@example.com"}


def new_app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=30)


def signed_in(user_id: int, *, idle: timedelta = timedelta(0)) -> AppTest:
    """An AppTest whose session already holds a signed-in user (what a successful login leaves behind)."""
    at = new_app()
    at.session_state[USER_ID] = user_id
    at.session_state[LAST_SEEN] = utcnow() - idle
    return at


def login(at: AppTest, email: str, password: str) -> AppTest:
    at.text_input(key="login_email").input(email)
    at.text_input(key="login_password").input(password)
    return at.button(key="login_submit").click().run()


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


BUCKETS = ("Overdue", "Due today", "Next 7 days", "Snoozed")


def sections(at) -> dict[str, list[str]]:
    """What the inbox lists under each bucket heading, in page order (task subjects are bold markdown)."""
    found, current = {}, None
    for text in (m.value for m in at.markdown):
        bucket = next((b for b in BUCKETS if text.startswith((f"**{b}**", f"**:red[{b}]**"))), None)
        if bucket is not None:
            current = found.setdefault(bucket, [])
        elif "-badge[" in text:
            current = None  # the notifications begin
        elif current is not None and text.startswith("**") and text.endswith("**"):
            current.append(text[2:-2])
    return found
