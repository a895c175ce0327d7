"""Snapshots and their features: pure functions of the loaded frames, shared by training and scoring.

A training example is a closed deal's situation at one moment: its creation, each stage entry, and checkpoints
(CHECKPOINT_DAYS) into a stage visit while the deal still sat there. Features use only what happened strictly before
that moment: activities, behaviour events and the company's closed deals later than it are never counted. Deal and
company attributes (amount, owner, custom fields …) are their stored values: the CRM keeps no history of them.
"""
import numpy as np
import pandas as pd

from crm.ml.win.data import DAY, RECENT_DAYS, RECENT_KINDS, WinData

CHECKPOINT_DAYS = (14, 45)  # extra snapshots into a stage visit, so time in stage is learnt from real situations
SAME_MOMENT = 60.0  # a first stage entry within a minute of creation is the creation itself
NEVER_DAYS = 3650.0  # "days since the last activity" when there was none: worse than any real gap
NUMERIC = ["stage_probability", "stage_position", "days_in_stage", "age_days", "days_to_close", "log_amount",
           "products", "activities", "activities_30d", "meetings_30d", "calls_30d", "emails_30d",
           "days_since_activity", "events", "events_30d", "days_since_event", "log_employees", "log_revenue",
           "company_past_wins", "company_past_deals"]
CATEGORICAL = ["stage", "pipeline", "owner", "source", "product", "industry", "country"]


def is_text(column: pd.Series) -> bool:
    """A categorical column (object or string dtype), as opposed to a number."""
    return not pd.api.types.is_numeric_dtype(column)


def training_snapshots(data: WinData) -> pd.DataFrame:
    """deal_id, time, stage_id, stage_entered and won (the eventual outcome) for every closed deal's snapshots."""
    deals = data.deals[data.deals["status"].isin(["won", "lost"])]
    visits = _visits(deals, data.history, data.stages)
    parts = []
    for offset in (0.0, *(d * DAY for d in CHECKPOINT_DAYS)):
        at = visits["entered"] + offset
        keep = (at < visits["exit"]) | (offset == 0)
        keep &= ~(at >= visits["closed"])  # NaN closed: no bound
        parts.append(pd.DataFrame({"deal_id": visits["deal_id"][keep], "time": at[keep],
                                   "stage_id": visits["stage_id"][keep], "stage_entered": visits["entered"][keep]}))
    snaps = pd.concat(parts, ignore_index=True).sort_values(["deal_id", "time"], kind="stable")
    won = deals.set_index("id")["status"].eq("won")
    snaps["won"] = won.reindex(snaps["deal_id"]).to_numpy().astype(np.int8)
    return snaps.reset_index(drop=True)


def _visits(deals: pd.DataFrame, history: pd.DataFrame, stages: pd.DataFrame) -> pd.DataFrame:
    """Each open-stage visit of each deal with its entry and exit; a creation visit where history does not start
    at creation (or is missing: deals imported with only their outcome)."""
    terminal = stages.set_index("id")[["is_won", "is_lost"]].any(axis=1)
    h = history[history["deal_id"].isin(deals["id"])].sort_values(["deal_id", "entered"], kind="stable")
    closed = deals.set_index("id")["closed"]
    h = h.assign(exit=h.groupby("deal_id")["entered"].shift(-1))
    h["exit"] = h["exit"].fillna(closed.reindex(h["deal_id"]).set_axis(h.index))
    is_open = ~terminal.reindex(h["stage_id"]).fillna(False).to_numpy().astype(bool)
    first_any = h.groupby("deal_id")["entered"].first()
    open_visits = h[is_open]
    first_open = open_visits.groupby("deal_id").first()
    pipeline_first = _first_open_stage(stages)
    d = deals.set_index("id")
    start_stage = first_open["stage_id"].reindex(d.index)
    start_stage = start_stage.fillna(d["pipeline_id"].map(pipeline_first))
    history_start = first_any.reindex(d.index)
    need = history_start.isna() | (history_start > d["created"] + SAME_MOMENT)
    creation = pd.DataFrame({"deal_id": d.index[need], "stage_id": start_stage[need].to_numpy(),
                             "entered": d["created"][need].to_numpy(),
                             "exit": history_start[need].fillna(d["closed"][need]).to_numpy()})
    visits = pd.concat([creation, open_visits[["deal_id", "stage_id", "entered", "exit"]]], ignore_index=True)
    visits = visits.dropna(subset=["stage_id", "entered"])
    visits["stage_id"] = visits["stage_id"].astype(np.int64)
    visits["closed"] = closed.reindex(visits["deal_id"]).to_numpy()
    visits["exit"] = visits["exit"].fillna(np.inf)
    return visits.reset_index(drop=True)


def _first_open_stage(stages: pd.DataFrame) -> pd.Series:
    open_stages = stages[~stages["is_won"].astype(bool) & ~stages["is_lost"].astype(bool)]
    return open_stages.sort_values(["pipeline_id", "position", "id"]).groupby("pipeline_id")["id"].first()


def open_snapshots(data: WinData, as_of: float) -> pd.DataFrame:
    """One snapshot per open deal, now: its current stage and when it entered it."""
    deals = data.deals[data.deals["status"] == "open"]
    last_entry = data.history.groupby("deal_id")["entered"].max()
    entered = deals["stage_entered"].fillna(deals["id"].map(last_entry)).fillna(deals["created"])
    return pd.DataFrame({"deal_id": deals["id"].to_numpy(), "time": np.full(len(deals), float(as_of)),
                         "stage_id": deals["stage_id"].to_numpy(), "stage_entered": entered.to_numpy()})


MISSING_KEY = 2**31 - 1


class _Timeline:
    """Sorted (owner key, time) pairs: counts and last times strictly before a moment, for many moments at once."""

    def __init__(self, keys: pd.Series, times: pd.Series, weights: pd.Series | None = None):
        ok = keys.notna().to_numpy() & times.notna().to_numpy()
        k = keys.to_numpy()[ok].astype(np.int64)
        t = np.floor(times.to_numpy()[ok]).astype(np.int64)
        w = np.ones(len(k)) if weights is None else weights.fillna(1).to_numpy(dtype=float)[ok]
        combined = (k << 32) | t
        order = np.argsort(combined, kind="stable")
        self.combined, self.times = combined[order], t[order]
        self.total = np.r_[0.0, np.cumsum(w[order])]  # rows may stand for several folded ones

    def before(self, keys: np.ndarray, moments: np.ndarray, window: float | None = None):
        """How many rows of each key are strictly before each moment (and within `window` seconds of it), and the
        time of the latest one (NaN if none)."""
        k = np.where(np.isnan(keys), MISSING_KEY, keys).astype(np.int64)  # a missing key matches nothing
        t = np.floor(moments).astype(np.int64)
        hi = np.searchsorted(self.combined, (k << 32) | t, side="left")
        start = np.searchsorted(self.combined, (k << 32) | (np.maximum(t - int(window), 0) if window else 0),
                                side="left")
        count = self.total[hi] - self.total[start]
        last = np.where(hi > start, self.times[np.maximum(hi - 1, 0)] if len(self.times) else np.nan, np.nan)
        return count, last.astype(float)


def features(snapshots: pd.DataFrame, data: WinData) -> pd.DataFrame:
    """The model's inputs for each snapshot (deal_id, time, stage_id, stage_entered), as of its time. Pure."""
    t = snapshots["time"].to_numpy(dtype=float)
    deal = data.deals.set_index("id").reindex(snapshots["deal_id"])
    stages = data.stages.set_index("id").reindex(snapshots["stage_id"])
    out = pd.DataFrame(index=snapshots.index)
    out["stage_probability"] = stages["probability"].to_numpy(dtype=float)
    out["stage_position"] = stages["position"].to_numpy(dtype=float)
    out["days_in_stage"] = np.maximum(t - snapshots["stage_entered"].to_numpy(dtype=float), 0) / DAY
    out["age_days"] = np.maximum(t - deal["created"].to_numpy(dtype=float), 0) / DAY
    out["days_to_close"] = (deal["expected_close"].to_numpy(dtype=float) - t) / DAY
    amount = deal["amount"].to_numpy(dtype=float)
    out["log_amount"] = np.log1p(np.where(amount > 0, amount, np.nan))
    lines = data.products.groupby("deal_id")
    out["products"] = lines.size().reindex(snapshots["deal_id"]).fillna(0).to_numpy(dtype=float)
    by_value = data.products.sort_values(["deal_id", "value"], ascending=[True, False])
    main = by_value.groupby("deal_id")["product"].first()
    deal_ids = snapshots["deal_id"].to_numpy(dtype=float)
    acts = data.activities
    everything = _Timeline(acts["deal_id"], acts["time"], acts.get("n"))
    out["activities"], last = everything.before(deal_ids, t)
    out["activities_30d"], _ = everything.before(deal_ids, t, RECENT_DAYS * DAY)
    for kind in RECENT_KINDS:
        column = f"{kind}s_30d"
        mine = acts[acts["kind"] == kind]
        recent = _Timeline(mine["deal_id"], mine["time"], mine.get("n"))
        out[column], _ = recent.before(deal_ids, t, RECENT_DAYS * DAY)
    out["days_since_activity"] = np.nan_to_num((t - last) / DAY, nan=NEVER_DAYS)
    contact = deal["contact_id"].to_numpy(dtype=float)
    events = _Timeline(data.events["contact_id"], data.events["time"], data.events.get("n"))
    out["events"], last_event = events.before(contact, t)
    out["events_30d"], _ = events.before(contact, t, RECENT_DAYS * DAY)
    out["days_since_event"] = np.nan_to_num((t - last_event) / DAY, nan=NEVER_DAYS)
    company = data.companies.set_index("id").reindex(deal["company_id"])
    out["log_employees"] = np.log1p(company["employees"].to_numpy(dtype=float))
    out["log_revenue"] = np.log1p(company["annual_revenue"].to_numpy(dtype=float))
    company_ids = deal["company_id"].to_numpy(dtype=float)
    closed = data.outcomes
    out["company_past_deals"], _ = _Timeline(closed["company_id"], closed["closed"], closed.get("n")).before(
        company_ids, t)
    wins = closed[closed["won"] == 1]
    out["company_past_wins"], _ = _Timeline(wins["company_id"], wins["closed"], wins.get("n")).before(company_ids, t)
    out["stage"] = snapshots["stage_id"].astype("Int64").astype(str).to_numpy()
    out["pipeline"] = deal["pipeline_id"].astype("Int64").astype(str).to_numpy()
    out["owner"] = deal["owner_id"].astype("Int64").astype(str).replace("<NA>", None).to_numpy()
    out["source"] = deal["source"].to_numpy()
    out["product"] = main.reindex(snapshots["deal_id"]).to_numpy()
    out["industry"] = company["industry"].to_numpy()
    out["country"] = company["country"].to_numpy()
    for column in ("products", "activities", "activities_30d", "meetings_30d", "calls_30d", "emails_30d", "events",
                   "events_30d", "company_past_deals", "company_past_wins"):
        out[column] = out[column].astype(float)
    return pd.concat([out, _custom(snapshots, deal, data.custom, t)], axis=1)


def _custom(snapshots: pd.DataFrame, deal: pd.DataFrame, custom: pd.DataFrame, t: np.ndarray) -> pd.DataFrame:
    """One column per deal or company custom field: `cf_<entity>_<key>`; dates become days from the snapshot.

    A value counts only if it was last set before the snapshot: one written later (a contract end recorded when
    the deal was won) says nothing about that moment, and what it replaced is not kept."""
    cols = {}
    records = {"deal": snapshots["deal_id"].to_numpy(), "company": deal["company_id"].to_numpy()}
    for (entity, key, field_type), rows in custom.groupby(["entity", "key", "field_type"], sort=True):
        values = rows.drop_duplicates("record_id").set_index("record_id")
        name = f"cf_{entity}_{key}"
        known = values["since"].reindex(records[entity]).to_numpy(dtype=float) < t  # NaN (no value) → False
        if field_type == "number":
            cols[name] = np.where(known, values["number"].reindex(records[entity]).to_numpy(dtype=float), np.nan)
        elif field_type == "date":
            days = (values["number"].reindex(records[entity]).to_numpy(dtype=float) - t) / DAY
            cols[name] = np.where(known, days, np.nan)
        else:
            text = values["text"].reindex(records[entity]).to_numpy(dtype=object)
            cols[name] = np.where(known, text, None)
    return pd.DataFrame(cols, index=snapshots.index)
