"""K-means clusters of contacts on engagement, commerce and firmographics, each described in words.

Features, one row per live contact the actor may read, as of `now` (nothing later is read):
- engagement: behaviour events of each kind in the last 90 days; days since the last event, and since the last
  activity (a call or meeting's time, else the time a task was done);
- commerce: completed, non-deleted orders dated by `now`: their number, total, and days since the last;
- firmographics: the live company's employees and annual revenue (unknown: the median of the known values), and
  one 0/1 column for each of the most common industries.
"Days since" is capped at a year (never counts as a year). Counts, totals and company sizes are log-transformed
(log1p), so a few very large values do not make clusters of their own; then every column is standardized.

K-means is fitted for each k on one random sample of contacts (fixed by the seed); the silhouette of each k is
measured on a smaller sample drawn from it, the k with the highest silhouette wins (the smaller k on a tie), and its
model assigns every contact. Clusters are numbered 1..k from the largest. Each is described by the features on which
its contacts differ most from all the others: the difference of the two means, in standard deviations of the
feature (its mean's distance from the overall mean, divided by 1 - its share, so a cluster of most contacts, which
sits near the overall mean, is still described by what sets it apart).
"""
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler
from sqlalchemy import case, func, select
from sqlmodel import Session

from crm.clock import as_utc, utcnow
from crm.errors import ValidationFailed
from crm.sqlfuncs import epoch
from crm.models import Activity, BehaviorEvent, Company, Contact, EventKind
from crm.permissions import Actor, readable_owner_ids, require
from crm.segments.rfm import order_totals
from crm.sqlfuncs import unindexed
from crm.targets import TargetList, save_static_segment

WINDOW_DAYS = 90
QUIET_DAYS = 365.0
TOP_INDUSTRIES = 5
FIT_SAMPLE = 20_000  # contacts k-means is fitted on, for every k
SILHOUETTE_SAMPLE = 3_000  # silhouette costs n², so it is measured on fewer
N_INIT = 4
DESCRIBE_TOP = 3  # features named per cluster
NOTABLE = 0.5  # standard deviations from the other contacts below which a feature is not worth naming

EVENTS = [k.value for k in EventKind]
_EVENT_WORDS = {"web_visit": "web visits", "email_open": "email opens", "email_click": "email clicks",
                "form_submission": "form submissions", "offer_viewed": "offer views"}
# feature -> (words when the cluster is above the mean, words when below)
PHRASES = {
    **{f"{k}_{WINDOW_DAYS}d": (f"many {w} in the last {WINDOW_DAYS} days", f"few {w} in the last {WINDOW_DAYS} days")
       for k, w in _EVENT_WORDS.items()},
    "days_since_event": ("no tracked behaviour for long", "recent tracked behaviour"),
    "days_since_activity": ("no activity with them for long", "a recent activity with them"),
    "orders": ("many orders", "few orders"),
    "order_total": ("high order total", "low order total"),
    "days_since_order": ("no order for long", "a recent order"),
    "employees": ("large companies", "small companies"),
    "annual_revenue": ("high company revenue", "low company revenue"),
}
LOGGED = [*(f"{k}_{WINDOW_DAYS}d" for k in EVENTS), "orders", "order_total", "employees", "annual_revenue"]
INDUSTRY = "industry: "


@dataclass(frozen=True)
class Clustering:
    """labels: id, cluster (1..k, largest first). choice: k, silhouette, inertia (on the fitting sample), for every
    k tried. clusters: cluster, size, share, description. profile: each cluster's mean of every feature, in the
    feature's own units (counts, days, money, people; industries as shares), index cluster."""
    as_of: datetime
    seed: int
    k: int
    features: list[str]
    labels: pd.DataFrame
    choice: pd.DataFrame
    clusters: pd.DataFrame
    profile: pd.DataFrame


def cluster_contacts(*, session: Session, actor: Actor, seed: int = 0, k_range: range = range(2, 9),
                     now: datetime | None = None, sample_size: int = FIT_SAMPLE) -> Clustering:
    """Cluster the contacts the actor may read; the same seed and data give the same k and labels."""
    if k_range.start < 2:
        raise ValidationFailed("k_range", "clustering needs at least 2 clusters")
    as_of = as_utc(now) if now is not None else utcnow()
    raw = contact_features(session, actor, as_of)
    scaled = StandardScaler().fit_transform(_transformed(raw))
    model, choice = _choose_k(scaled, seed=seed, k_range=k_range, sample_size=sample_size)
    k = model.n_clusters
    labels = _by_size(model.predict(scaled), k)
    sizes = np.bincount(labels, minlength=k + 1)[1:]
    # Scaled columns have mean 0 and deviation 1, so a cluster's mean is its distance from the overall mean.
    means = pd.DataFrame(scaled, columns=raw.columns).groupby(labels).mean().reindex(range(1, k + 1))
    contrast = means.div(1 - sizes / len(labels), axis=0)
    clusters = pd.DataFrame({"cluster": np.arange(1, k + 1), "size": sizes, "share": sizes / len(labels),
                             "description": [describe(contrast.loc[c]) for c in range(1, k + 1)]})
    return Clustering(as_of=as_of, seed=seed, k=k, features=list(raw.columns),
                      labels=pd.DataFrame({"id": raw.index.to_numpy(), "cluster": labels}), choice=choice,
                      clusters=clusters, profile=raw.groupby(labels).mean().rename_axis("cluster"))


def save_cluster_segment(*, session: Session, actor: Actor, clustering: Clustering, cluster: int, name: str,
                         description: str | None = None) -> TargetList:
    """A static segment of one cluster's contacts (the ones the actor may read); the definition records how the
    clusters were made. Needs segments.manage. The description defaults to the cluster's words."""
    require(actor, "segments.manage", "create segments")
    if not 1 <= cluster <= clustering.k:
        raise ValidationFailed("cluster", f"there is no cluster {cluster}; pick 1 to {clustering.k}")
    ids = clustering.labels.loc[clustering.labels["cluster"] == cluster, "id"].astype(int).tolist()
    words = clustering.clusters.loc[clustering.clusters["cluster"] == cluster, "description"].iloc[0]
    definition = {"analytic": "clusters", "seed": clustering.seed, "k": clustering.k, "cluster": cluster,
                  "features": clustering.features, "as_of": clustering.as_of.isoformat()}
    return save_static_segment(session=session, actor=actor, name=name, contact_ids=ids, definition=definition,
                               description=description or words[:1000])


def describe(contrast: pd.Series) -> str:
    """Words for a cluster from its standardized differences to the other contacts, largest first. An industry is
    named only where the cluster has more of it: "seldom in Retail" says little about who is in it."""
    industry = contrast.index.str.startswith(INDUSTRY)
    notable = contrast[(contrast.abs() >= NOTABLE) & ~(industry & (contrast < 0))]
    top = notable.reindex(notable.abs().sort_values(ascending=False, kind="stable").index[:DESCRIBE_TOP])
    words = [_phrase(feature, value) for feature, value in top.items()]
    return ", ".join(words) if words else "much like the other contacts"


def _phrase(feature: str, value: float) -> str:
    if feature.startswith(INDUSTRY):
        return f"mostly in {feature.removeprefix(INDUSTRY)}"
    high, low = PHRASES[feature]
    return high if value > 0 else low


def contact_features(session: Session, actor: Actor, as_of: datetime) -> pd.DataFrame:
    """The raw features (index: contact id, ascending): contacts and companies, then three aggregate queries."""
    conn = session.connection()
    base = _contacts(conn, session, actor)
    return pd.concat([_engagement(conn, base.index, as_of), _commerce(conn, base.index, as_of),
                      _firmographics(base)], axis=1)


def _days_since(as_of: datetime, last: pd.Series) -> pd.Series:
    """Days from epoch seconds `last` to `as_of`, capped at QUIET_DAYS (also for never)."""
    return ((as_of.timestamp() - last) / 86_400).clip(lower=0, upper=QUIET_DAYS).fillna(QUIET_DAYS)


def _engagement(conn, index: pd.Index, as_of: datetime) -> pd.DataFrame:
    events = _frame(conn, _events_query(as_of), ["id", "kind", "recent", "last"])
    out = pd.DataFrame(index=index)
    for kind in EVENTS:
        mine = events[events["kind"] == kind].set_index("id")
        out[f"{kind}_{WINDOW_DAYS}d"] = mine["recent"].reindex(index).fillna(0).astype(float)
    out["days_since_event"] = _days_since(as_of, events.groupby("id")["last"].max().reindex(index))
    activities = _frame(conn, _activities_query(as_of), ["id", "last"]).set_index("id")
    out["days_since_activity"] = _days_since(as_of, activities["last"].reindex(index))
    return out


def _commerce(conn, index: pd.Index, as_of: datetime) -> pd.DataFrame:
    """The RFM order figures (completed, non-deleted, dated by `as_of`)."""
    orders = order_totals(conn, as_of, "contact").set_index("id").reindex(index)
    return pd.DataFrame({"orders": orders["frequency"].fillna(0).astype(float),
                         "order_total": orders["monetary"].fillna(0).astype(float),
                         "days_since_order": _days_since(as_of, orders["last"])}, index=index)


def _firmographics(base: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=base.index)
    for column in ("employees", "annual_revenue"):
        known = pd.to_numeric(base[column], errors="coerce").astype(float)
        out[column] = known.fillna(known.median() if known.notna().any() else 0.0)
    counts = base["industry"].value_counts().sort_index().sort_values(ascending=False, kind="stable")
    for industry in counts.index[:TOP_INDUSTRIES]:  # the most common first, ties by name
        out[f"{INDUSTRY}{industry}"] = (base["industry"] == industry).astype(float)
    return out


def _frame(conn, query, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(r) for r in conn.execute(query)], columns=columns)


def _contacts(conn, session: Session, actor: Actor) -> pd.DataFrame:
    """Live readable contacts (by id) with their live company's employees, annual_revenue and industry.

    Read apart and matched in pandas: joining a million contacts to their companies in SQL took three times as long.
    """
    c, co = Contact.__table__.c, Company.__table__.c
    query = select(c.id, c.company_id).where(c.deleted_at.is_(None)).order_by(c.id)
    readable = readable_owner_ids(session, actor, "contacts")
    if readable is not None:
        query = query.where(c.owner_id.in_(readable))
    contacts = _frame(conn, query, ["id", "company_id"]).set_index("id")
    if contacts.empty:
        raise ValidationFailed("contacts", "there are no contacts you may read to cluster")
    companies = _frame(conn, select(co.id, co.employees, co.annual_revenue, co.industry).where(co.deleted_at.is_(None)),
                       ["company_id", "employees", "annual_revenue", "industry"]).set_index("company_id")
    return companies.reindex(contacts["company_id"]).set_axis(contacts.index)


def _events_query(as_of: datetime):
    e = BehaviorEvent.__table__.c
    recent = func.sum(case((e.occurred_at > as_of - timedelta(days=WINDOW_DAYS), 1), else_=0))
    return (select(e.contact_id, e.kind, recent, epoch(func.max(e.occurred_at)))
            .where(e.occurred_at <= as_of).group_by(e.contact_id, e.kind))


def _activities_query(as_of: datetime):
    a = Activity.__table__.c
    when = func.coalesce(a.occurred_at, a.done_at)
    contact = unindexed(a.contact_id)  # one pass over the table: ten times faster on SQLite than via the index
    return (select(contact, epoch(func.max(when)))
            .where(contact.is_not(None), a.deleted_at.is_(None), when <= as_of).group_by(contact))


def _transformed(raw: pd.DataFrame) -> np.ndarray:
    out = raw.copy()
    out[LOGGED] = np.log1p(out[LOGGED].clip(lower=0))
    return out.to_numpy(dtype=float)


def _choose_k(scaled: np.ndarray, *, seed: int, k_range: range, sample_size: int) -> tuple[KMeans, pd.DataFrame]:
    """The k-means model of the k with the best silhouette, and the silhouette and inertia of every k tried."""
    order = np.random.default_rng(seed).permutation(len(scaled))
    fit = scaled[np.sort(order[:sample_size])]
    probe = scaled[np.sort(order[:min(SILHOUETTE_SAMPLE, sample_size)])]
    # k-means cannot find more clusters than distinct points, and a silhouette needs fewer clusters than points.
    distinct = len(np.unique(fit, axis=0))
    ks = [k for k in k_range if k <= distinct and k < len(probe)]
    if not ks:
        raise ValidationFailed("contacts", "too few different contacts to cluster")
    models, rows = {}, []
    for k in ks:
        models[k] = KMeans(n_clusters=k, n_init=N_INIT, random_state=seed).fit(fit)
        found = models[k].predict(probe)
        score = silhouette_score(probe, found) if len(np.unique(found)) > 1 else np.nan
        rows.append({"k": k, "silhouette": score, "inertia": models[k].inertia_})
    choice = pd.DataFrame(rows)
    if choice["silhouette"].isna().all():
        raise ValidationFailed("contacts", "the contacts are too alike to split into clusters")
    return models[int(choice.loc[choice["silhouette"].idxmax(), "k"])], choice


def _by_size(labels: np.ndarray, k: int) -> np.ndarray:
    """Labels renumbered 1..k from the largest cluster (ties: the lower original label first)."""
    sizes = np.bincount(labels, minlength=k)
    ranked = np.lexsort((np.arange(len(sizes)), -sizes))
    renumber = np.empty(len(sizes), dtype=int)
    renumber[ranked] = np.arange(1, len(sizes) + 1)
    return renumber[labels]
