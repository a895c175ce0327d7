"""What each contact contributes to the KPI cube, computed in pandas from its orders and list events.

Pure functions of plain frames (no database), so the definitions can be read and tested in one place. Every
measure is additive: a KPI over any set of contacts is a sum of their rows. The definitions mirror the SQL ones in
crm/kpis/revenue.py and crm/kpis/customers.py exactly (tests compare the two on every hand-made data set):

- revenue, orders (day of the order): completed, live, dated orders.
- customers (day of the first such order): 1 per contact, so customers before t = contacts with an order before t.
- new_customers (same day, key = the contact's source): only if the contact has no undated counted order (CAC).
- buyers (first day of each month with an order): distinct customers per calendar month.
- active_start / active_end: a contact is *active* at t when it has an order in [t − 365 days, t), i.e. t lies in
  (o, o + 365 days] for one of its orders o. The union of those intervals is a few disjoint spans (s, e]; active
  at a midnight t = Σ active_start before t − Σ active_end before t (by day). retained_start / retained_end are the
  spans of "active at t and at t − 365 days" (the predicted lifetime value's retention).
- lost_{n} (n = 1 or 3, on a month's first day p): active at p and not at p + n months (churn of a month or
  quarter).
- Transitions of n-month periods starting on a month's first day p, against the n months before (what
  upsell_rate and net_new_revenue compute per customer): upsold_{n}, cross_sold_{n}, upsold_or_cross_sold_{n}
  (counts), and rev_new_{n}, rev_reactivated_{n}, rev_expansion_{n}, rev_contraction_{n}, rev_churned_{n}
  (amounts).
- list_sub / list_unsub (day, key = list): subscription events that changed their (contact, list) pair's state;
  list_events counts every event, so a list with events is known even when none changed anything.
"""
import numpy as np
import pandas as pd

ACTIVE = pd.Timedelta(days=365)
PERIOD_MONTHS = (1, 3)
NO_CHANNEL = "(none)"
COLUMNS = ["contact_id", "measure", "day", "key", "value"]
OWNER_COLUMNS = ["owner_id", "measure", "day", "key", "value"]


def month_index(moments: pd.Series) -> pd.Series:
    return moments.dt.year * 12 + moments.dt.month - 1


def month_start(index) -> pd.Series:
    """First day of month `index` (year * 12 + month − 1) as datetime64, keeping a Series' index. numpy counts
    datetime64[M] in months since January 1970, so this is arithmetic (pd.to_datetime of year, month and day
    columns took 2 ms a call, about a third of refreshing one contact's share before a commit)."""
    index = pd.Series(index)
    months = (index.to_numpy(dtype=np.int64) - 1970 * 12).astype("datetime64[M]").astype("datetime64[us]")
    return pd.Series(months, index=index.index)


def _rows(contact_id, measure, moment, value, key="") -> pd.DataFrame:
    return pd.DataFrame({"contact_id": contact_id, "measure": measure, "day": moment, "key": key, "value": value})


def contributions(contacts: pd.DataFrame, orders: pd.DataFrame, lines: pd.DataFrame,
                  events: pd.DataFrame) -> pd.DataFrame:
    """The cube rows of these contacts, summed per owner: owner_id, measure, day, key, value.

    contacts: id, owner_id (0 for none), source — live contacts only; the others contribute nothing.
    orders: id, contact_id, ordered_at (naive UTC, NaT when undated), total, counted (completed and live).
    lines: order_id, product_id. events: id, contact_id, list_name, action, occurred_at."""
    live = set(contacts["id"])
    owner_of = contacts.set_index("id")["owner_id"]
    orders = orders[orders["counted"] & orders["contact_id"].isin(live)]
    dated = orders[orders["ordered_at"].notna()].sort_values(["contact_id", "ordered_at", "id"])
    parts = [_revenue(dated), _firsts(contacts, orders, dated), *_spans(dated),
             _lists(events[events["contact_id"].isin(live)])]
    parts = [p.assign(owner_id=p["contact_id"].map(owner_of)).drop(columns="contact_id") for p in parts if len(p)]
    parts.append(_transitions(dated, lines, owner_of))
    out = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else \
        pd.DataFrame(columns=OWNER_COLUMNS)
    out = out[out["value"] != 0]
    out["day"] = pd.to_datetime(out["day"]).dt.date
    out["owner_id"] = out["owner_id"].astype(int)
    return out.groupby(OWNER_COLUMNS[:-1], as_index=False)["value"].sum()


def _revenue(dated: pd.DataFrame) -> pd.DataFrame:
    day = dated["ordered_at"].dt.normalize()
    per = dated.assign(day=day).groupby(["contact_id", "day"]).agg(revenue=("total", "sum"), orders=("id", "size"))
    per = per.reset_index()
    months = dated.assign(day=dated["ordered_at"].dt.to_period("M").dt.to_timestamp())[["contact_id", "day"]]
    months = months.drop_duplicates()
    return pd.concat([_rows(per["contact_id"], "revenue", per["day"], per["revenue"]),
                      _rows(per["contact_id"], "orders", per["day"], per["orders"]),
                      _rows(months["contact_id"], "buyers", months["day"], 1.0)])


def _firsts(contacts: pd.DataFrame, orders: pd.DataFrame, dated: pd.DataFrame) -> pd.DataFrame:
    first = dated.groupby("contact_id")["ordered_at"].min()
    undated = set(orders.loc[orders["ordered_at"].isna(), "contact_id"])
    source = contacts.set_index("id")["source"].fillna(NO_CHANNEL)
    new = first[~first.index.isin(undated)]
    return pd.concat([_rows(first.index, "customers", first.dt.normalize().values, 1.0),
                      _rows(new.index, "new_customers", new.dt.normalize().values, 1.0,
                            key=source.reindex(new.index).values)])


def active_spans(dated: pd.DataFrame) -> pd.DataFrame:
    """contact_id, start, end: the disjoint spans (start, end] of moments at which each contact is active."""
    if dated.empty:
        return pd.DataFrame({"contact_id": [], "start": [], "end": []})
    moments = dated[["contact_id", "ordered_at"]]
    gap = moments["ordered_at"] - moments.groupby("contact_id")["ordered_at"].shift()
    new_span = gap.isna() | (gap > ACTIVE)
    span = new_span.cumsum()
    spans = moments.groupby(span).agg(contact_id=("contact_id", "first"), start=("ordered_at", "min"),
                                      end=("ordered_at", "max"))
    spans["end"] = spans["end"] + ACTIVE
    return spans.reset_index(drop=True)


def _spans(dated: pd.DataFrame) -> list[pd.DataFrame]:
    spans = active_spans(dated)
    if spans.empty:
        return []
    pairs = spans.merge(spans, on="contact_id", suffixes=("", "_before"))
    lo = np.maximum(pairs["start"], pairs["start_before"] + ACTIVE)
    hi = np.minimum(pairs["end"], pairs["end_before"] + ACTIVE)
    kept = pairs.assign(lo=lo, hi=hi)[lo < hi]
    return [_rows(spans["contact_id"], "active_start", spans["start"].dt.normalize(), 1.0),
            _rows(spans["contact_id"], "active_end", spans["end"].dt.normalize(), 1.0),
            _rows(kept["contact_id"], "retained_start", kept["lo"].dt.normalize(), 1.0),
            _rows(kept["contact_id"], "retained_end", kept["hi"].dt.normalize(), 1.0),
            *[_lost(spans, n) for n in PERIOD_MONTHS]]


def _lost(spans: pd.DataFrame, n: int) -> pd.DataFrame:
    """Month starts p with the contact active at p and not at p + n months: only the last n month starts of a
    span can be, and only if p + n months is not in the contact's next span."""
    last = month_index(spans["end"])  # the month start at or before the span's end
    following = spans.groupby("contact_id")["start"].shift(-1)
    following_end = spans.groupby("contact_id")["end"].shift(-1)
    found = []
    for k in range(n):
        p = month_start(last - k)
        p.index = spans.index
        later = month_start(last - k + n)
        later.index = spans.index
        inside = (p > spans["start"]) & (p <= spans["end"])
        back = following.notna() & (later > following) & (later <= following_end)
        hit = inside & ~back
        found.append(_rows(spans.loc[hit, "contact_id"], f"lost_{n}", p[hit], 1.0))
    return pd.concat(found)


def _transitions(dated: pd.DataFrame, lines: pd.DataFrame, owner_of: pd.Series) -> pd.DataFrame:
    """Per month start p, the n-month period from p against the n months before it, summed per owner."""
    if dated.empty:
        return pd.DataFrame(columns=OWNER_COLUMNS)
    month = month_index(dated["ordered_at"])
    low, high = int(month.min()), int(month.max())
    pad = max(PERIOD_MONTHS)
    ids, position = np.unique(dated["contact_id"].to_numpy(), return_inverse=True)
    width = high - low + 1 + 2 * pad
    column = (month - low + pad).to_numpy()
    revenue, orders = np.zeros((len(ids), width)), np.zeros((len(ids), width))
    np.add.at(revenue, (position, column), dated["total"].to_numpy(dtype=float))
    np.add.at(orders, (position, column), 1)
    first = np.full(len(ids), width)
    np.minimum.at(first, position, column)
    products = np.zeros((len(ids), width))
    bought = lines.merge(dated[["id", "contact_id", "ordered_at"]], left_on="order_id", right_on="id")
    if len(bought):
        firsts = bought.groupby(["contact_id", "product_id"])["ordered_at"].min().reset_index()
        rows = np.searchsorted(ids, firsts["contact_id"].to_numpy())
        np.add.at(products, (rows, (month_index(firsts["ordered_at"]) - low + pad).to_numpy()), 1)
    owners, owner_row = np.unique(owner_of.reindex(ids).to_numpy(dtype=int), return_inverse=True)
    out = []
    for n in PERIOD_MONTHS:
        for name, values in _period_moves(revenue, orders, products, first, n).items():
            summed = np.zeros((len(owners), width))
            np.add.at(summed, owner_row, values)
            row, col = np.nonzero(summed)
            out.append(pd.DataFrame({"owner_id": owners[row], "measure": name,
                                     "day": month_start(col + low - pad).values, "key": "",
                                     "value": summed[row, col]}))
    return pd.concat(out)[OWNER_COLUMNS]


def _window(matrix: np.ndarray, start: int, n: int) -> np.ndarray:
    """Σ matrix[:, p + start : p + start + n] for every column p (zero outside)."""
    total = np.zeros_like(matrix)
    for k in range(start, start + n):
        shifted = np.zeros_like(matrix)
        if k >= 0:
            shifted[:, :matrix.shape[1] - k] = matrix[:, k:]
        else:
            shifted[:, -k:] = matrix[:, :matrix.shape[1] + k]
        total += shifted
    return total


def _period_moves(revenue, orders, products, first, n: int) -> dict[str, np.ndarray]:
    """Per contact (row) and month start (column): upsell and cross-sell flags and the net-new-revenue amounts of
    the n months from that start against the n months before."""
    prev, cur = _window(revenue, -n, n), _window(revenue, 0, n)
    prev_n, cur_n = _window(orders, -n, n), _window(orders, 0, n)
    new_product = _window(products, 0, n) > 0
    p = np.arange(revenue.shape[1])[None, :]
    existing, earlier = first[:, None] < p, first[:, None] < p - n
    upsold, crossed = existing & (cur > prev), existing & new_product
    both = (prev_n > 0) & (cur_n > 0)
    return {
        f"upsold_{n}": upsold * 1.0, f"cross_sold_{n}": crossed * 1.0,
        f"upsold_or_cross_sold_{n}": (upsold | crossed) * 1.0,
        f"rev_new_{n}": np.where((prev_n == 0) & ~earlier, cur, 0.0),
        f"rev_reactivated_{n}": np.where((prev_n == 0) & earlier, cur, 0.0),
        f"rev_expansion_{n}": np.where(both & (cur > prev), cur - prev, 0.0),
        f"rev_contraction_{n}": np.where(both & (cur < prev), prev - cur, 0.0),
        f"rev_churned_{n}": np.where((cur_n == 0) & (prev_n > 0), prev, 0.0),
    }


def _lists(events: pd.DataFrame) -> pd.DataFrame:
    if events.empty:
        return pd.DataFrame(columns=COLUMNS)
    events = events.sort_values(["contact_id", "list_name", "occurred_at", "id"])
    before = events.groupby(["contact_id", "list_name"])["action"].shift().fillna("unsubscribe")
    changed = events[events["action"] != before]
    day = events["occurred_at"].dt.normalize()
    return pd.concat([
        _rows(events["contact_id"], "list_events", day, 1.0, key=events["list_name"]),
        _rows(changed["contact_id"], "list_sub", day[changed.index].where(changed["action"] == "subscribe"), 1.0,
              key=changed["list_name"]).dropna(subset=["day"]),
        _rows(changed["contact_id"], "list_unsub", day[changed.index].where(changed["action"] == "unsubscribe"),
              1.0, key=changed["list_name"]).dropna(subset=["day"]),
    ])
