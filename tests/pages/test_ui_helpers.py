"""The small pure helpers behind the pages, and the rules every UI file keeps."""
import ast
from pathlib import Path

import pytest

from crm.errors import ValidationFailed
from crm.models import Role, StageInput
from ui.admin_fields import key_from_label
from ui.admin_pipelines import parse_stages
from ui.navigation import (
    ADMIN, COMPANIES, COMPANY, CONTACT, CONTACTS, DEAL, HOME, LOGIN, PIPELINE, all_pages, pages_for,
)
from ui.text import md_escape

ROOT = Path(__file__).resolve().parents[2]
UI_FILES = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "ui").glob("*.py"))]


def test_pages_per_role():
    assert pages_for(None) == [LOGIN]
    for role in Role:
        pages = pages_for(role)
        assert pages[0] == HOME
        assert {CONTACTS, CONTACT, COMPANIES, COMPANY} <= set(pages)
        assert (ADMIN in pages) is (role is Role.ADMIN)
        assert (PIPELINE in pages) is (DEAL in pages) is (role is not Role.MARKETER)
    assert [p for p in all_pages() if p.hidden] == [CONTACT, COMPANY, DEAL]  # record pages open from the lists


def test_url_paths_never_match_a_page_file_name():
    """/<file name> would run the page without app.py's gate in Streamlit's legacy folder mode."""
    for spec in all_pages():
        assert spec.url_path != Path(spec.path).stem
        assert (ROOT / spec.path).is_file()


@pytest.mark.parametrize("text, shown", [
    ("<img src=x onerror=alert(1)>", r"\<img src=x onerror=alert\(1\)\>"),
    ("[click](http://evil.example)", r"\[click\]\(http://evil\.example\)"),
    ("**bold** _it_ $x$ `code`", r"\*\*bold\*\* \_it\_ \$x\$ \`code\`"),
    ("Ana Lima", "Ana Lima"),
])
def test_md_escape_leaves_nothing_for_markdown_to_interpret(text, shown):
    assert md_escape(text) == shown


def test_parse_stages():
    assert parse_stages("Lead, 10\n\n Won , 100%, WON\nLost,0,lost") == [
        StageInput(name="Lead", probability=0.1), StageInput(name="Won", probability=1.0, is_won=True),
        StageInput(name="Lost", probability=0.0, is_lost=True)]
    assert parse_stages("Lead") == [StageInput(name="Lead", probability=0.0)]


@pytest.mark.parametrize("text, message", [
    ("Lead, ten", "line 1: 'ten' is not a percentage"),
    ("Lead, 10\nWon, 100, maybe", "line 2: the probability must be 0–100"),
    ("Lead, 120", "line 1: the probability must be 0–100"),
    (", 10", "line 1: write"),
    ("A, 1, won, extra", "line 1: write"),
])
def test_parse_stages_names_the_line(text, message):
    with pytest.raises(ValidationFailed) as caught:
        parse_stages(text)
    assert caught.value.field == "stages"
    assert caught.value.reason.startswith(message)


@pytest.mark.parametrize("label, key", [
    ("Renewal date", "renewal_date"), ("  NPS (0–10)  ", "nps_0_10"), ("2nd owner", "field_2nd_owner"), ("", "field"),
])
def test_key_from_label(label, key):
    assert key_from_label(label) == key


def test_no_ui_file_allows_raw_html():
    offenders = []
    for path in UI_FILES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg == "unsafe_allow_html":
                offenders.append(str(path.relative_to(ROOT)))
            if isinstance(node, ast.Attribute) and node.attr in ("html", "components"):
                offenders.append(f"{path.relative_to(ROOT)}: st.{node.attr}")
    assert offenders == []
