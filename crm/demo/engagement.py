"""Activities (calls, emails, meetings, notes, tasks) and tracked behaviour events."""
import numpy as np

from crm.demo import catalog
from crm.demo.arrays import draw, lookup, nullable, spans
from crm.demo.context import DAY, Ctx, as_datetime, month_starts
from crm.demo.directory import Contacts
from crm.demo.people import Staff
from crm.demo.pipeline import OPEN, Deals
from crm.demo.pools import LOCALE_REGION
from crm.demo.writer import Frame, stamp

KINDS = ("call", "email", "meeting", "note", "task")
TASK = KINDS.index("task")
DEAL_KIND_WEIGHTS = (0.28, 0.34, 0.14, 0.12, 0.12)
CONTACT_KIND_WEIGHTS = (0.25, 0.40, 0.10, 0.15, 0.10)
EVENT_KINDS = ("web_visit", "email_open", "email_click", "form_submission", "offer_viewed")
EVENT_WEIGHTS = (0.42, 0.25, 0.10, 0.06, 0.17)
UTC_OFFSET = np.array([-5, 1, 8]) * 3600  # Americas, EMEA, APAC: roughly, for office hours
Parts = dict[str, np.ndarray]


def _office_hours(ctx: Ctx, contacts: Contacts, contact: np.ndarray, time: np.ndarray, lo: np.ndarray,
                  hi: np.ndarray) -> np.ndarray:
    """Move each time to 08:00-18:00 local time of its day, staying within [lo, hi]: people call from work."""
    offset = UTC_OFFSET[LOCALE_REGION[contacts.locale[contact]]]
    local_midnight = (time + offset) // DAY * DAY - offset
    return np.clip(local_midnight + 8 * 3600 + ctx.rng.integers(0, 10 * 3600, len(time)), lo, hi)


def _deal_part(ctx: Ctx, deals: Deals, counts: np.ndarray, office: Contacts | None = None) -> Parts:
    """Rows spread over each deal's life (up to today for open deals), on the deal's contact."""
    deal, _ = spans(counts)
    contact, lo = deals.contact[deal], deals.created[deal]
    hi = np.maximum(deals.ended[deal] - 60, lo + 1)
    time = ctx.between(lo, hi)
    if office is not None:
        time = _office_hours(ctx, office, contact, time, lo, hi - 1)
    return {"contact": contact, "deal": deal, "owner": deals.owner[deal], "time": time}


def _contact_part(ctx: Ctx, contacts: Contacts, weights: np.ndarray, count: int, office: bool = False) -> Parts:
    """Rows on contacts chosen by weight, at any time since each contact arrived."""
    contact = np.sort(draw(ctx.rng, weights, max(count, 0)))
    lo = contacts.created[contact]
    time = ctx.between(lo, ctx.anchor - 60)
    if office:
        time = _office_hours(ctx, contacts, contact, time, lo, np.full(len(time), ctx.anchor - 61))
    return {"contact": contact, "deal": np.full(len(contact), -1), "owner": contacts.owner[contact], "time": time}


def _next_steps(ctx: Ctx, deals: Deals) -> Parts:
    """An upcoming task on most open deals: the rep's next step."""
    deal = np.flatnonzero((deals.status == OPEN) & (ctx.rng.random(len(deals.status)) < 0.7))
    time = ctx.anchor + ctx.rng.integers(2 * 3600, 21 * DAY, len(deal))
    return {"contact": deals.contact[deal], "deal": deal, "owner": deals.owner[deal], "time": time,
            "kind": np.full(len(deal), TASK)}


def _demo_tasks(ctx: Ctx, staff: Staff, deals: Deals, contacts: Contacts) -> Parts:
    """The demo rep's own to-do list: overdue, due today and upcoming, on their open deals."""
    mine = np.flatnonzero((deals.owner == staff.demo_rep) & (deals.status == OPEN))
    if len(mine) == 0:
        mine = np.flatnonzero(deals.status == OPEN)[:1]
    hours = np.array([-5 * 24 + 10, -26, 9.5, 14, 16.5, 24 + 10, 3 * 24 + 11, 6 * 24 + 15])
    deal = mine[np.arange(len(hours)) % max(len(mine), 1)] if len(mine) else np.full(len(hours), -1)
    contact = np.where(deal >= 0, deals.contact[np.maximum(deal, 0)], 0)
    return {"contact": contact, "deal": deal, "owner": np.full(len(hours), staff.demo_rep),
            "time": ctx.anchor + (hours * 3600).astype(np.int64), "kind": np.full(len(hours), TASK),
            "open": np.ones(len(hours), dtype=bool)}


def _join(ctx: Ctx, parts: list[Parts], kind_weights: tuple) -> Parts:
    """Concatenate parts, filling the optional columns a part left out, and sort the rows by time."""
    sizes = [len(p["time"]) for p in parts]
    defaults = {"kind": lambda m: draw(ctx.rng, kind_weights, m), "open": lambda m: np.zeros(m, dtype=bool),
                "offer": lambda m: ctx.rng.integers(0, len(catalog.OFFERS), m)}
    out = {key: np.concatenate([p[key] for p in parts]) for key in ("contact", "deal", "owner", "time")}
    for key, make in defaults.items():
        out[key] = np.concatenate([p[key] if key in p else make(m) for p, m in zip(parts, sizes)])
    order = np.argsort(out["time"], kind="stable")
    return {key: value[order] for key, value in out.items()}


def activities(ctx: Ctx, staff: Staff, contacts: Contacts, deals: Deals) -> Frame:
    """Deal work, contact-level touches, next steps on open deals and the demo rep's tasks, in time order."""
    parts = [_deal_part(ctx, deals, deals.activities, office=contacts), _next_steps(ctx, deals),
             _demo_tasks(ctx, staff, deals, contacts)]
    left = ctx.size.activities - sum(len(p["time"]) for p in parts)
    parts.append(_contact_part(ctx, contacts, contacts.propensity, left, office=True))
    rows = _join(ctx, parts, DEAL_KIND_WEIGHTS)
    return _activity_frame(ctx, staff, contacts, deals, rows)


def _task_state(ctx: Ctx, rows: Parts) -> tuple[np.ndarray, np.ndarray]:
    """Which tasks are done, and when: old ones almost always, recent ones about half, future ones never."""
    rng, time = ctx.rng, rows["time"]
    n = len(time)
    chance = np.select([time < ctx.anchor - 14 * DAY, time < ctx.anchor], [0.96, 0.55], 0.0)
    is_task = rows["kind"] == TASK
    done = np.where(is_task, (rng.random(n) < chance) & ~rows["open"], True)
    finished = np.where(is_task, time + rng.integers(-DAY, 2 * DAY, n), time)
    return done, np.minimum(finished, ctx.anchor - 60)


def _activity_frame(ctx: Ctx, staff: Staff, contacts: Contacts, deals: Deals, rows: Parts) -> Frame:
    rng, n = ctx.rng, len(rows["time"])
    kind, time, contact = rows["kind"], rows["time"], rows["contact"]
    is_task = kind == TASK
    done, finished = _task_state(ctx, rows)
    created = np.where(is_task, np.minimum(time - rng.integers(DAY // 2, 7 * DAY, n), ctx.anchor - 3600), time)
    created = np.maximum(created, contacts.created[contact])
    assignee = np.where(is_task & (rng.random(n) < 0.15), staff.teammate(rng, rows["owner"]), rows["owner"])
    subject = np.empty(n, dtype=object)
    for k, name in enumerate(KINDS):
        mask = kind == k
        subject[mask] = lookup(catalog.SUBJECTS[name], rng.integers(0, len(catalog.SUBJECTS[name]), int(mask.sum())))
    with_body = rng.random(n) < np.array([0.3, 0.0, 0.5, 1.0, 0.0])[kind]
    company = contacts.company[contact]
    frame = {
        "id": np.arange(1, n + 1), "kind": lookup(KINDS, kind), "subject": subject,
        "body": nullable(lookup(catalog.BODIES, rng.integers(0, len(catalog.BODIES), n)), ~with_body),
        "contact_id": contact + 1, "company_id": nullable(company + 1, company < 0),
        "deal_id": nullable(rows["deal"] + 1, rows["deal"] < 0), "owner_id": rows["owner"], "assignee_id": assignee,
        "occurred_at": as_datetime(time, is_task), "due_at": as_datetime(time, ~is_task),
        "done_at": as_datetime(finished, ~done),
        "snoozed_until": as_datetime(time + DAY, ~(is_task & ~done & (rng.random(n) < 0.05))),
    }
    return stamp(frame, created, np.where(done, np.maximum(finished, created), created))


def events(ctx: Ctx, contacts: Contacts, deals: Deals, offer_views: Parts) -> Frame:
    """Behaviour: engagement around deals, offers viewed before purchases, and everyone's background browsing."""
    deal_rows = _deal_part(ctx, deals, deals.events)
    m = len(offer_views["time"])
    views = {"contact": offer_views["contact"], "deal": np.full(m, -1), "owner": np.zeros(m, dtype=np.int64),
             "time": offer_views["time"], "offer": offer_views["product"],
             "kind": np.full(m, EVENT_KINDS.index("offer_viewed"))}
    left = max(ctx.size.events - len(deal_rows["time"]) - m, ctx.size.events // 10)
    weights = contacts.propensity * np.where(contacts.subscribed, 2.0, 1.0)
    rows = _join(ctx, [deal_rows, views, _contact_part(ctx, contacts, weights, left)], EVENT_WEIGHTS)
    return _event_frame(ctx, contacts, rows)


def _event_frame(ctx: Ctx, contacts: Contacts, rows: Parts) -> Frame:
    rng, n = ctx.rng, len(rows["time"])
    kind = rows["kind"]
    emailed = (kind == 1) | (kind == 2)
    kind = np.where(emailed & ~contacts.subscribed[rows["contact"]], 0, kind)  # our emails reach subscribers only
    is_email = (kind == 1) | (kind == 2)
    months = month_starts(ctx.start, ctx.anchor)
    month = np.searchsorted(months, rows["time"], side="right") - 1
    labels = [f"Newsletter {np.datetime64(m, 's').astype('datetime64[M]')}" for m in months.tolist()]
    page = np.select([kind == 0, kind == 2, kind == 3],
                     [rng.integers(0, len(catalog.WEB_PAGES), n), rng.integers(0, 4, n),
                      len(catalog.WEB_PAGES) + rng.integers(0, len(catalog.FORMS), n)], -1)
    urls = [catalog.SITE + p for p in (*catalog.WEB_PAGES, *catalog.FORMS)]
    frame = {
        "id": np.arange(1, n + 1), "contact_id": rows["contact"] + 1, "kind": lookup(EVENT_KINDS, kind),
        "occurred_at": as_datetime(rows["time"]), "url": nullable(lookup(urls, np.maximum(page, 0)), page < 0),
        "offer": nullable(lookup(catalog.OFFERS, rows["offer"]), kind != 4),
        "campaign": nullable(lookup(labels, np.maximum(month, 0)), ~is_email),
        "properties": _properties(rng, kind, rows["offer"]),
    }
    return stamp(frame, rows["time"])


def _properties(rng: np.random.Generator, kind: np.ndarray, offer: np.ndarray) -> np.ndarray:
    devices = [{"device": d} for d in ("desktop", "mobile", "tablet")]
    forms = [{"form": f.strip("/")} for f in catalog.FORMS]
    offers = [{"sku": p[1]} for p in catalog.PRODUCTS]
    out = lookup(devices, draw(rng, (6, 3, 1), len(kind)))
    out[kind == 3] = lookup(forms, rng.integers(0, len(forms), int((kind == 3).sum())))
    out[kind == 4] = lookup(offers, offer[kind == 4])
    return out
