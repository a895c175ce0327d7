"""Feature values in words a rep understands."""
import math

import numpy as np

from crm.ml.win.features import NEVER_DAYS

NAMES = {
    "stage": "stage", "pipeline": "pipeline", "days_in_stage": "days in the current stage", "age_days": "deal age",
    "days_to_close": "days to the expected close", "log_amount": "amount", "products": "number of products",
    "activities": "activities so far", "activities_30d": "activities in the last 30 days",
    "meetings_30d": "meetings in the last 30 days", "calls_30d": "calls in the last 30 days",
    "emails_30d": "emails in the last 30 days", "days_since_activity": "days since the last activity",
    "events": "contact's web visits and email opens", "events_30d": "contact's web visits and opens (30 days)",
    "days_since_event": "days since the contact last engaged online", "log_employees": "company size",
    "log_revenue": "company revenue", "company_past_wins": "company's past wins",
    "company_past_deals": "company's past closed deals", "owner": "owner", "source": "source",
    "product": "main product", "industry": "industry", "country": "country",
}
GROUPS = {"stage": ["stage", "stage_probability", "stage_position"]}  # explained together, as one factor


def name(column: str) -> str:
    if column.startswith("cf_"):
        return column.split("_", 2)[2].replace("_", " ") + f" ({column.split('_', 2)[1]} field)"
    return NAMES.get(column, column.replace("_", " "))


def _n(count: float, word: str) -> str:
    count = int(round(count))
    return f"{count} {word}" + ("" if count == 1 else "s")


def describe(column: str, row: dict, stage_name: str, labels: dict) -> str:
    """One factor of one deal in words: `row` is the deal's feature values, `labels` maps ids to names."""
    v = row.get(column)
    missing = v is None or (isinstance(v, float) and math.isnan(v))
    if column == "stage":
        return f"in stage {stage_name}"
    if column == "pipeline":
        return f"in the {labels['pipeline'].get(str(v), v)} pipeline"
    if column == "owner":
        return "no owner" if missing else f"owned by {labels['owner'].get(str(v), 'user ' + str(v))}"
    if column in ("source", "product", "industry", "country"):
        return f"no {name(column)} recorded" if missing else {
            "source": f"came from {v}", "product": f"main product {v}", "industry": f"company in {v}",
            "country": f"company based in {v}"}[column]
    if column.startswith("cf_"):
        label = column.split("_", 2)[2].replace("_", " ").capitalize()
        if missing:
            return f"{label} not filled in"
        if column.startswith("cf_") and isinstance(v, float) and "date" not in column:
            return f"{label}: {v:g}"
        return f"{label}: {v}"
    if missing:
        return f"no {name(column)} recorded"
    return _number(column, float(v), stage_name)


def _number(column: str, v: float, stage_name: str) -> str:
    if column == "days_in_stage":
        return f"has sat {v:.0f} days in {stage_name}"
    if column == "age_days":
        return f"open for {v:.0f} days"
    if column == "days_to_close":
        return f"expected to close in {v:.0f} days" if v >= 0 else f"close date passed {-v:.0f} days ago"
    if column == "log_amount":
        return f"amount {math.expm1(v):,.0f}"
    if column == "products":
        return _n(v, "product") + " on the deal"
    if column == "activities":
        return "no activity logged yet" if v == 0 else _n(v, "activity").replace("activitys", "activities") + \
            " logged so far"
    if column in ("activities_30d", "meetings_30d", "calls_30d", "emails_30d"):
        word = {"activities_30d": "activity", "meetings_30d": "meeting", "calls_30d": "call", "emails_30d": "email"}
        return _n(v, word[column]).replace("activitys", "activities") + " in the last 30 days"
    if column == "days_since_activity":
        return "no activity logged yet" if v >= NEVER_DAYS else f"last activity {v:.0f} days ago"
    if column == "events":
        return f"{v:.0f} web visits, email opens or clicks by the contact so far"
    if column == "events_30d":
        return f"{v:.0f} web visits, email opens or clicks by the contact in the last 30 days"
    if column == "days_since_event":
        return "the contact has not engaged online" if v >= NEVER_DAYS else \
            f"the contact last engaged online {v:.0f} days ago"
    if column == "log_employees":
        return f"a company of {np.expm1(v):,.0f} employees"
    if column == "log_revenue":
        return f"company revenue {np.expm1(v):,.0f}"
    if column == "company_past_wins":
        if v == 0:
            return "no earlier wins with this company"
        return f"the company has bought from us {_n(v, 'time')} before"
    if column == "company_past_deals":
        return "first deal with this company" if v == 0 else f"{_n(v, 'earlier closed deal')} with this company"
    return f"{name(column)} {v:g}"
