"""`python -m crm import`: stdout is only the JSON summary; a mapping file and --dry-run work; mistakes are one line."""
import json

import pytest

from tests.test_cli import crm  # noqa: F401  (a fixture: runs the CLI against a fresh database)

CONTACTS = "Email,First name,Score\r\nann@example.com,Ann,50\r\nbad,Bo,\r\ncy@example.com,Cy,500\r\n"


@pytest.fixture
def files(tmp_path):
    (tmp_path / "people.csv").write_text(CONTACTS, encoding="utf-8")
    (tmp_path / "mapping.json").write_text(json.dumps(
        {"columns": {"Email": "email", "First name": "first_name", "Score": "lead_score"}}), encoding="utf-8")
    return tmp_path


def test_import_prints_a_json_summary_and_nothing_else(crm, files):
    assert crm("init").returncode == 0
    dry = crm("import", "contacts", str(files / "people.csv"), "--mapping", str(files / "mapping.json"), "--dry-run",
              "--error-dir", str(files / "errors"))
    assert dry.returncode == 0, dry.stderr
    preview = json.loads(dry.stdout)
    assert (preview["dry_run"], preview["created"], preview["rejected"]) == (True, 1, 2)
    done = json.loads(crm("import", "contacts", str(files / "people.csv"), "--mapping", str(files / "mapping.json"),
                          "--error-dir", str(files / "errors")).stdout)
    assert {k: done[k] for k in ("created", "updated", "rejected", "job_id")} == {
        "created": 1, "updated": 0, "rejected": 2, "job_id": preview["job_id"] + 1}
    errors = (files / "errors" / f"import-{done['job_id']}-errors.csv").read_text(encoding="utf-8-sig")
    assert done["error_file"].endswith(f"import-{done['job_id']}-errors.csv")
    assert '"3","Email","bad"' in errors and '"4","Score","500","must be between 0 and 100"' in errors
    again = json.loads(crm("import", "contacts", str(files / "people.csv"),
                           "--error-dir", str(files / "errors")).stdout)
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 1)


@pytest.mark.parametrize("args, message", [
    (["import", "contacts", "/nowhere.csv"], "error: no file at /nowhere.csv"),
    (["import", "contacts", "{people}", "--mapping", "/nowhere.json"], "error: cannot read the mapping file"),
    (["import", "companies", "{people}"], "error: mapping: companies need a column for name"),
])
def test_import_mistakes_are_one_line(crm, files, args, message):
    crm("init")
    result = crm(*[a.format(people=files / "people.csv") for a in args])
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines()[-1].startswith(message)


def test_import_has_help(crm):
    result = crm("import", "--help")
    assert result.returncode == 0 and "--dry-run" in result.stdout and "--mapping" in result.stdout


def test_the_import_bench_reports_its_speed():
    from crm.imports.bench import bench_import

    result = bench_import(rows=300, seed=3)
    assert (result["rows"], result["created"], result["rejected"]) == (300, 300, 0)
    assert result["rows_per_second"] > 0 and result["seconds"] > 0
