"""Every headline KPI in the order the dashboard shows them, each with the rows behind it.

The definitions live in `crm.kpis.deals`, `crm.kpis.revenue` and `crm.kpis.customers` (docs/kpis.md); this module
only lists them, so the page, the CLI and the bench ask for "every KPI" in one place.
"""
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from sqlmodel import Session

from crm.errors import ValidationFailed
from crm.kpis import customers, deals, revenue
from crm.kpis.base import KpiFilter, Metric
from crm.permissions import Actor, require


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    compute: Callable[[Session, Actor, KpiFilter], Metric]
    records: Callable[[Session, Actor, KpiFilter], pd.DataFrame] | None
    higher_is_better: bool = True  # how a change is coloured: churn, CAC and resolution time go down when better


KPIS = [
    Kpi("close_rate", "Close rate", deals.close_rate, deals.close_rate_records),
    Kpi("cohort_close_rate", "Close rate of the period's new deals", deals.cohort_close_rate,
        deals.cohort_close_rate_records),
    Kpi("sales_cycle", "Sales cycle (median days)", deals.sales_cycle, deals.sales_cycle_records, False),
    Kpi("upsell_rate", "Upsell and cross-sell rate", revenue.upsell_rate, revenue.upsell_rate_records),
    Kpi("net_new_revenue", "Net new revenue", revenue.net_new_revenue, revenue.net_new_revenue_records),
    Kpi("lifetime_value", "Customer lifetime value", revenue.lifetime_value, revenue.lifetime_value_records),
    Kpi("predicted_lifetime_value", "Predicted lifetime value", revenue.predicted_lifetime_value, None),
    Kpi("cac", "Customer acquisition cost", customers.customer_acquisition_cost, customers.cac_records, False),
    Kpi("email_list_growth", "Email-list growth", customers.email_list_growth,
        customers.email_list_growth_records),
    Kpi("nps", "NPS", customers.net_promoter_score, customers.nps_records),
    Kpi("churn_rate", "Churn rate", customers.churn_rate, customers.churn_records, False),
    Kpi("mttr", "Time to resolve tickets (hours)", customers.mean_time_to_resolve,
        customers.mean_time_to_resolve_records, False),
]
BY_KEY = {k.key: k for k in KPIS}
RIGHT = "forecast.view"  # managers and admins: the people who decide from these numbers


def compute_all(session: Session, actor: Actor, flt: KpiFilter) -> dict[str, Metric]:
    """Every headline KPI for the filter. Needs forecast.view; each metric also keeps to what the actor may read."""
    require(actor, RIGHT, "see the KPI dashboard")
    return {k.key: k.compute(session, actor, flt) for k in KPIS}


def records(session: Session, actor: Actor, flt: KpiFilter, key: str) -> pd.DataFrame:
    """The rows behind one KPI (empty when it has none to show, e.g. a prediction)."""
    require(actor, RIGHT, "see the KPI dashboard")
    kpi = BY_KEY.get(key)
    if kpi is None:
        raise ValidationFailed("kpi", f"{key!r} is not a KPI")
    return kpi.records(session, actor, flt) if kpi.records else pd.DataFrame()


def metrics_frame(metrics: dict[str, Metric], previous: dict[str, Metric] | None = None) -> pd.DataFrame:
    """The KPIs as a table for the safe exporter: value, its parts, and the previous period's value."""
    rows = []
    for kpi in KPIS:
        m = metrics.get(kpi.key)
        if m is None:
            continue
        before = previous.get(kpi.key) if previous else None
        rows.append({"kpi": kpi.label, "value": m.value, "unit": m.unit, "numerator": m.numerator,
                     "denominator": m.denominator, "previous_period": before.value if before else None})
    return pd.DataFrame(rows)
