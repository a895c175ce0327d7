"""The models benchmark trains, scores and explains on whatever data there is, and marks its targets."""
from datetime import date, timedelta

from crm.bench_models import bench_models, summary_rows
from crm.db import session_scope
from crm.deals import DealInput, create_deal
from tests.factories import actor, make_user


def test_bench_trains_scores_and_explains_and_marks_the_targets(sqlite_engine, tmp_path):
    make_user(sqlite_engine, "admin")
    rep = make_user(sqlite_engine, "rep", team="East")
    with session_scope(sqlite_engine) as s:
        for i in range(3):
            create_deal(session=s, actor=actor(sqlite_engine, rep), data=DealInput(
                title=f"Deal {i}", amount=100, expected_close=date.today() + timedelta(days=5)))

    result = bench_models(sqlite_engine, tmp_path / "models")

    assert result["scored"] == 3 and result["tier"] == "stage base rates"  # no closed deal yet: the first rung
    assert (tmp_path / "models" / "win" / "champion.json").is_file()
    rows = summary_rows(result)
    assert rows[0][2] == "≤ 120 s ✅" and rows[1][1].endswith("per 100,000)") and len(rows) == 3
