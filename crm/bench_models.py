"""Benchmark of the models at a demo size: training the win model, scoring every open deal, explaining one."""
import statistics
import time
from pathlib import Path

from sqlalchemy import Engine

from crm.db import read_scope
from crm.deals import newest_open_deal_id
from crm.models import Role
from crm.permissions import load_actor
from crm.users import first_active_user_of_role

TRAIN_TARGET_S, SCORE_TARGET_S_PER_100K = 120, 5.0


def bench_models(engine: Engine, root: Path) -> dict:
    """Seconds. Trains into `root` (the bench's own models folder, which the page benchmark then reads)."""
    from crm.ml.win import explain_deal, load_champion, score_open_deals, train_win

    start = time.perf_counter()
    summary = train_win(engine, root=root)
    train_s = time.perf_counter() - start
    scores = []
    for _ in range(2):
        start = time.perf_counter()
        frame = score_open_deals(engine, root=root, write=False)
        scores.append(time.perf_counter() - start)
    with read_scope(engine) as s:
        admin = first_active_user_of_role(session=s, role=Role.ADMIN)
        deal = newest_open_deal_id(session=s, actor=load_actor(s, admin)) if admin else None
    model = load_champion(root)
    start = time.perf_counter()
    if deal is not None:
        explain_deal(engine, deal, root=root, model=model)
    explain_s = time.perf_counter() - start
    return {"train_s": train_s, "tier": summary["tier"], "rows": summary["rows"], "auc": summary["metrics"]["model"]
            .get("auc"), "baseline_auc": summary["metrics"].get("stage_default", {}).get("auc"),
            "score_s": statistics.median(scores), "scored": len(frame), "explain_s": explain_s}


def summary_rows(result: dict) -> list[tuple[str, str, str]]:
    per_100k = result["score_s"] * 100_000 / max(result["scored"], 1)
    auc = "" if result["auc"] is None else f"; holdout AUC {result['auc']:.3f} against the stage table's " \
                                            f"{result['baseline_auc']:.3f}"
    rows = result["rows"]
    return [
        (f"training the win model ({result['tier']}, {rows.get('deals', 0):,} closed deals, "
         f"{rows.get('snapshots', 0):,} snapshots{auc})", f"{result['train_s']:.1f} s",
         f"≤ {TRAIN_TARGET_S} s {'✅' if result['train_s'] <= TRAIN_TARGET_S else '❌ over target'}"),
        (f"scoring every open deal ({result['scored']:,}), median of 2", f"{result['score_s']:.1f} s "
         f"({per_100k:.1f} s per 100,000)",
         f"≤ {SCORE_TARGET_S_PER_100K:.0f} s per 100,000 "
         f"{'✅' if per_100k <= SCORE_TARGET_S_PER_100K else '❌ over target'}"),
        ("explaining one deal (factors and what-ifs), champion already loaded", f"{result['explain_s'] * 1000:.0f} ms",
         "—"),
    ]
