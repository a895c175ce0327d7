"""Deal rows and what hangs off them: stage history, line items, deal contacts; and the reps' quotas."""
import numpy as np

from crm.demo import catalog
from crm.demo.arrays import draw, group_cumsum, lookup, nullable, pick_member, spans
from crm.demo.context import DAY, Ctx, add_months, as_date, as_datetime, month_starts
from crm.demo.directory import Contacts
from crm.demo.people import Staff
from crm.demo.pipeline import LOST, OPEN, RENEWAL, WON, Deals, PipelineRef
from crm.demo.writer import Frame, stamp

STATUS = ("open", "won", "lost")
DISCOUNTS = np.array([0.0, 0.05, 0.1, 0.15, 0.2])
LOST_REASON_WEIGHTS = (0.22, 0.2, 0.15, 0.13, 0.12, 0.1, 0.08)
EXTRA_ROLES = ("Influencer", "Technical evaluator", "Economic buyer", "End user")


def stage_history(ctx: Ctx, deals: Deals, refs: list[PipelineRef]) -> tuple[Frame, np.ndarray, np.ndarray]:
    """One row per stage entered, in order; returns the frame and each deal's current stage id and entry time."""
    rng, n = ctx.rng, len(deals.created)
    closed = deals.status != OPEN
    rows = deals.reached + 1 + closed
    deal, position = spans(rows)
    gaps = np.where(position > 0, rng.exponential(1.0, len(deal)), 0.0)
    trailing = np.where(closed, 0.0, rng.exponential(1.0, n))  # open deals are still sitting in their stage
    so_far = group_cumsum(gaps, rows)
    total = np.bincount(deal, weights=gaps, minlength=n) + trailing
    span = (deals.ended - deals.created).astype(float)
    entered = deals.created[deal] + (span[deal] * so_far / total[deal]).astype(np.int64)
    stage = _stage_ids(deals, refs, deal, position)
    last = np.cumsum(rows) - 1
    exited = np.r_[entered[1:], 0]
    is_last = np.zeros(len(deal), dtype=bool)
    is_last[last] = True
    frame = stamp({"id": np.arange(1, len(deal) + 1), "deal_id": deal + 1, "stage_id": stage,
                   "entered_at": as_datetime(entered), "exited_at": as_datetime(exited, is_last),
                   "changed_by_id": deals.owner[deal]}, entered, np.where(is_last, entered, exited))
    return frame, stage[last], entered[last]


def _stage_ids(deals: Deals, refs: list[PipelineRef], deal: np.ndarray, position: np.ndarray) -> np.ndarray:
    width = max(len(r.open_stages) for r in refs)
    table = np.array([np.r_[r.open_stages, np.zeros(width - len(r.open_stages), dtype=np.int64)] for r in refs])
    pipeline = np.minimum(deals.pipeline[deal], len(refs) - 1)
    terminal = np.where(deals.status[deal] == WON, np.array([r.won for r in refs])[pipeline],
                        np.array([r.lost for r in refs])[pipeline])
    in_open = position <= deals.reached[deal]
    return np.where(in_open, table[pipeline, np.minimum(position, width - 1)], terminal)


def line_items(ctx: Ctx, deals: Deals) -> tuple[Frame, np.ndarray]:
    """Each deal's products: its main product plus add-ons its buyers tend to take; returns rows and deal amounts."""
    rng, n = ctx.rng, len(deals.created)
    chance = 0.35 * catalog.AFFINITY[deals.product] / catalog.AFFINITY[deals.product].max(axis=1, keepdims=True)
    chance[:, [catalog.STARTER, catalog.PROFESSIONAL, catalog.ENTERPRISE]] = 0.0  # one edition per deal
    chance[deals.pipeline == RENEWAL] = 0.0  # renewal deals carry just the upsell
    extra_deal, extra_product = np.nonzero(rng.random(chance.shape) < chance)
    keep = extra_product != deals.product[extra_deal]
    deal = np.r_[np.arange(n), extra_deal[keep]]
    product = np.r_[deals.product, extra_product[keep]]
    order = np.argsort(deal, kind="stable")
    deal, product = deal[order], product[order]
    share = np.where(np.arange(len(deal)) == np.searchsorted(deal, deal), 1.0, rng.uniform(0.3, 1.0, len(deal)))
    quantity = np.where(catalog.PER_SEAT[product], np.maximum(np.round(deals.seats[deal] * share), 1), 1.0)
    size_bias = np.clip(np.log10(deals.seats + 1) - 1, 0, 3)
    discount = DISCOUNTS[np.minimum(draw(rng, (5, 3, 2, 1, 1), n) + (rng.random(n) < size_bias / 4), 4)]
    value = quantity * catalog.LIST_PRICE[product] * (1 - discount[deal])
    amount = np.round(np.bincount(deal, weights=value, minlength=n), 2)
    created = deals.created[deal]
    frame = stamp({"id": np.arange(1, len(deal) + 1), "deal_id": deal + 1, "product_id": product + 1,
                   "quantity": quantity, "unit_price": catalog.LIST_PRICE[product], "discount": discount[deal]},
                  created)
    return frame, amount


def deal_frame(ctx: Ctx, deals: Deals, contacts: Contacts, refs: list[PipelineRef], reasons: list[int],
               stage: np.ndarray, stage_entered: np.ndarray, amount: np.ndarray, company_names: np.ndarray) -> Frame:
    rng, n = ctx.rng, len(deals.created)
    is_open = deals.status == OPEN
    probability = _open_probability(deals, refs)
    expected = np.where(is_open, np.minimum(deals.created + deals.duration, ctx.anchor + 180 * DAY),
                        deals.created + (deals.duration * rng.uniform(0.8, 1.1, n)).astype(np.int64))
    overdue = is_open & (rng.random(n) < 0.12)
    expected = np.where(overdue, ctx.anchor - rng.integers(DAY, 40 * DAY, n), expected)
    reason = draw(rng, LOST_REASON_WEIGHTS[: len(reasons)] or (1,), n)
    frame = {
        "id": np.arange(1, n + 1), "title": _titles(deals, company_names),
        "pipeline_id": np.array([r.id for r in refs])[np.minimum(deals.pipeline, len(refs) - 1)],
        "stage_id": stage, "status": lookup(STATUS, deals.status), "amount": amount, "currency": "USD",
        "expected_close": as_date(expected), "closed_at": as_datetime(deals.ended, is_open),
        "owner_id": deals.owner, "company_id": deals.company + 1, "contact_id": deals.contact + 1,
        "forecast_category": _forecast(rng, is_open, probability),
        "rep_probability": nullable(np.round(np.clip(probability + rng.normal(0, 0.12, n), 0.05, 0.95), 2),
                                    ~is_open | (rng.random(n) > 0.2)),
        "lost_reason_id": nullable(np.array(reasons or [0])[reason], (deals.status != LOST) | (not reasons)),
        "source": lookup(catalog.SOURCES, np.where(rng.random(n) < 0.85, contacts.source[deals.contact], 3)),
        "next_step": nullable(lookup(catalog.NEXT_STEPS, rng.integers(0, len(catalog.NEXT_STEPS), n)), ~is_open),
        "stage_entered_at": as_datetime(stage_entered),
    }
    return stamp(frame, deals.created, stage_entered)


def _open_probability(deals: Deals, refs: list[PipelineRef]) -> np.ndarray:
    width = max(len(r.probability) for r in refs)
    table = np.array([np.r_[r.probability, np.zeros(width - len(r.probability))] for r in refs])
    return table[np.minimum(deals.pipeline, len(refs) - 1), deals.reached]


def _forecast(rng: np.random.Generator, is_open: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """Closed deals are 'closed'; open ones by stage probability, with a few the rep leaves out."""
    category = np.select([probability >= 0.6, probability >= 0.35], ["commit", "best_case"], "pipeline").astype(object)
    category[rng.random(len(is_open)) < 0.05] = "omitted"
    category[~is_open] = "closed"
    return category


def _titles(deals: Deals, company_names: np.ndarray) -> list[str]:
    short = [p[0].removeprefix("Core CRM ") for p in catalog.PRODUCTS]
    kind = np.where(deals.pipeline == RENEWAL, " upsell", "")
    return [f"{c} – {short[p]}{k}" for c, p, k in zip(company_names[deals.company].tolist(), deals.product.tolist(),
                                                     kind.tolist())]


def deal_contacts(ctx: Ctx, deals: Deals, contacts: Contacts) -> Frame:
    """The deal's contact as decision maker or champion, plus up to two colleagues from the same company."""
    rng, n = ctx.rng, len(deals.created)
    extra = draw(rng, (5, 3, 2), n)
    deal = np.r_[np.arange(n), np.repeat(np.arange(n), extra)]
    employed = np.flatnonzero(contacts.company >= 0)
    colleague = employed[pick_member(rng, contacts.company[employed], deals.company[deal[n:]])]
    contact = np.r_[deals.contact, colleague]
    role = np.r_[np.where(contacts.seniority[deals.contact] >= 2, 0, 1),
                 2 + rng.integers(0, len(EXTRA_ROLES), len(colleague))]
    _, first = np.unique(deal * len(contacts.created) + contact, return_index=True)
    keep = np.sort(first)
    keep = keep[np.argsort(deal[keep], kind="stable")]
    roles = ("Decision maker", "Champion", *EXTRA_ROLES)
    return stamp({"id": np.arange(1, len(keep) + 1), "deal_id": deal[keep] + 1, "contact_id": contact[keep] + 1,
                  "role": lookup(roles, role[keep])}, deals.created[deal[keep]])


def quotas(ctx: Ctx, staff: Staff, deals: Deals, amount: np.ndarray) -> Frame:
    """A target per rep per quarter, from the history through next quarter, near what reps really win."""
    months = month_starts(ctx.start, ctx.anchor + 92 * DAY)
    quarter_months = months[(months.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64) % 3) == 0]
    quarter_months = quarter_months[quarter_months <= ctx.anchor + 92 * DAY]
    won = deals.status == WON
    per_rep_quarter = amount[won].sum() / max(len(staff.rep_ids), 1) / max(len(quarter_months) - 1, 1)
    base = max(round(per_rep_quarter, -3), 10_000.0)
    quarter, rep = np.meshgrid(np.arange(len(quarter_months)), np.arange(len(staff.rep_ids)), indexing="ij")
    quarter, rep = quarter.ravel(), rep.ravel()
    start = quarter_months[quarter]
    end = add_months(start, 3)
    amount_due = np.round(base * (1 + 0.04 * quarter) * ctx.rng.uniform(0.95, 1.25, len(quarter)), -3)
    return stamp({"id": np.arange(1, len(quarter) + 1), "user_id": staff.rep_ids[rep], "period_start": as_date(start),
                  "period_end": as_date(end - DAY), "amount": amount_due}, np.minimum(start, ctx.anchor) - 14 * DAY)
