"""The CLI contract: subcommands with --help, passwords from stdin, one-line errors, exact backup/restore."""
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def crm(tmp_path):
    env = {**os.environ, "CRM_DATABASE_URL": f"sqlite:///{tmp_path / 'crm.db'}", "PYTHONPATH": str(ROOT),
           "CRM_MODELS_DIR": str(tmp_path / "models")}

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "crm", *args], input=stdin, capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=300)
    run.db = tmp_path / "crm.db"
    return run


@pytest.mark.parametrize("command", [[], ["init"], ["demo"], ["users"], ["users", "add"], ["backup"], ["restore"],
                                     ["bench"], ["forecast"], ["forecast", "snapshot"]])
def test_every_subcommand_has_help(crm, command):
    result = crm(*command, "--help")
    assert result.returncode == 0 and "usage: python -m crm" in result.stdout


def test_commands_before_init_say_what_to_do(crm):
    result = crm("users", "list")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: the database has no CRM schema yet; run `python -m crm init` first"


def test_init_is_idempotent_and_users_add_reads_the_password_from_stdin(crm):
    assert crm("init").returncode == 0
    assert crm("init").returncode == 0
    added = crm("users", "add", "Boss@Example.com", "--role", "admin", "--name", "The Boss", stdin="a long passphrase\n")
    assert added.returncode == 0, added.stderr
    listing = crm("users", "list").stdout
    assert "boss@example.com\tadmin\tactive\tThe Boss" in listing
    from crm.db import make_engine
    from crm.auth import login
    assert login(email="boss@example.com", password="a long passphrase", engine=make_engine(f"sqlite:///{crm.db}"))


@pytest.mark.parametrize("args, stdin, message", [
    (["users", "add", "x@example.com", "--role", "rep"], "short\n", "error: password: String should have at least 12"),
    (["users", "add", "not-an-email", "--role", "rep"], "a long passphrase\n", "error: email: "),
    (["users", "add", "x@example.com", "--role", "rep", "--team", "Nowhere"], "a long passphrase\n",
     "error: no team called 'Nowhere'"),
    (["users", "set-password", "ghost@example.com"], "a long passphrase\n", "error: no user with the email"),
    (["restore", "/nonexistent.db"], "", "error: no backup file at /nonexistent.db"),
])
def test_user_mistakes_get_one_line_and_no_traceback(crm, args, stdin, message):
    crm("init")
    result = crm(*args, stdin=stdin)
    assert result.returncode == 1
    assert result.stderr.startswith(message) and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return list(conn.iterdump())


def test_backup_and_restore_round_trip_exactly(crm, tmp_path):
    crm("init")
    crm("users", "add", "a@example.com", "--role", "admin", stdin="a long passphrase\n")
    backup = tmp_path / "backups" / "one.db"
    assert crm("backup", str(backup)).returncode == 0
    before = _dump(crm.db)
    assert _dump(backup) == before
    assert crm("backup", str(backup)).returncode == 1  # never overwrites an existing backup

    crm("users", "add", "b@example.com", "--role", "rep", stdin="a long passphrase\n")  # a change after the backup
    assert _dump(crm.db) != before
    restored = crm("restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert _dump(crm.db) == before
    safety = next((tmp_path / "backups").glob("before-restore-*.db"))
    assert "b@example.com" in "\n".join(_dump(safety))  # what was replaced is kept, not lost


def test_restore_refuses_a_file_that_is_not_a_crm_backup(crm, tmp_path):
    crm("init")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    result = crm("restore", str(other))
    assert result.returncode == 1 and "not a CRM backup" in result.stderr


def test_forecast_snapshot_is_safe_to_run_from_cron_any_number_of_times(crm):
    crm("init")
    assert crm("demo", "--size", "small", "--seed", "3").returncode == 0
    first, second = crm("forecast", "snapshot"), crm("forecast", "snapshot")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.startswith("Forecast snapshot stored: ") and first.stdout == second.stdout
    with sqlite3.connect(crm.db) as conn:
        rows = conn.execute("SELECT COUNT(*), COUNT(DISTINCT taken_on) FROM forecast_snapshot").fetchone()
        stats = conn.execute("SELECT COUNT(*) FROM stage_stat").fetchone()[0]
    assert rows[0] > 0 and rows[1] == 1  # today's rows, once: the second run replaced the first
    assert f"stage durations refreshed: {stats} rows" in second.stdout and stats > 0
