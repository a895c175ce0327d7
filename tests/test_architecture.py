"""The two layering rules: crm/ never imports streamlit; the UI never touches the database layer or SQL."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UI_FILES = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "ui").glob("*.py"))]
DB_MODULES = {"sqlmodel", "sqlalchemy", "sqlite3", "psycopg", "psycopg2"}
SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+TABLE|PRAGMA)\b",
                 re.IGNORECASE | re.DOTALL)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def string_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_domain_package_never_imports_streamlit():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "crm").rglob("*.py") if "streamlit" in imported_modules(p)]
    assert offenders == []


def test_ui_never_imports_the_database_layer():
    assert UI_FILES[0].exists(), "app.py is missing"
    offenders = {str(p.relative_to(ROOT)): sorted(imported_modules(p) & DB_MODULES) for p in UI_FILES}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_ui_holds_no_sql():
    offenders = [str(p.relative_to(ROOT)) for p in UI_FILES if any(SQL.search(s) for s in string_literals(p))]
    assert offenders == []


def test_the_rules_would_catch_a_violation(tmp_path):
    """Guard against a vacuous check: the detectors do fire on offending code."""
    bad = tmp_path / "bad.py"
    bad.write_text("import streamlit as st\nfrom sqlmodel import select\nq = 'select id from contact'\n")
    assert {"streamlit", "sqlmodel"} <= imported_modules(bad)
    assert any(SQL.search(s) for s in string_literals(bad))
