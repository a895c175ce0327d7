"""Duplicate contacts and companies (issue 8): scan, list, dismiss, and the bookkeeping a merge needs.

A scan (crm.hygiene.duplicates_scan) scores pairs in memory; this module stores them as duplicate_candidate rows,
so the page lists a million contacts' pairs by score without recomputing them. A rescan refreshes the open pairs
it finds again, adds new ones, deletes open pairs it no longer finds (a record was deleted or edited), and leaves
pairs someone dismissed or merged as they are: a dismissed pair never comes back. Dismissing is an audited edit of
the pair with a version check; merging is crm.hygiene.merge's, which calls mark_merged (and mark_unmerged on undo).
"""
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import Engine, delete, func, insert, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from crm.audit import apply_changes, audit, bump_data_version, check_version, load_for_update
from crm.clock import utcnow
from crm.db import read_scope, session_scope
from crm.errors import NotFound, ValidationFailed
from crm.hygiene.duplicates_scan import ENTITIES, ScanResult, scan
from crm.hygiene.jobs import require_hygiene
from crm.listing import COUNT_CAP
from crm.models import Company, Contact, DuplicateCandidate, DuplicatePairView, PairStatus
from crm.permissions import Actor, readable_owner_ids, require_read

MIN_SCORE = 0.5  # pairs scoring less are not stored (docs/hygiene.md: what scores what)
_MODELS = {"contact": Contact, "company": Company}
_CHUNK = 500


class ScanSummary(BaseModel):
    entity: str
    found: int  # pairs at or above the threshold
    new: int
    refreshed: int  # open pairs found again
    removed: int  # open pairs not found any more
    decided: int  # pairs found again that someone had dismissed or merged: left as they are
    scanned_at: datetime
    stats: dict  # crm.hygiene.duplicates_scan's counts and timings


class DuplicatePage(BaseModel):
    rows: list[DuplicatePairView]
    total: int
    capped: bool  # more than COUNT_CAP pairs: total is a lower bound
    scanned_at: datetime | None  # when the latest scan of this entity stored its pairs


def _check_entity(entity: str) -> None:
    if entity not in ENTITIES:
        raise ValidationFailed("entity", f"{entity!r} is not one of {', '.join(ENTITIES)}")


def find_duplicates(*, session: Session, actor: Actor, entity: str, min_score: float = MIN_SCORE) -> ScanResult:
    """Score the pairs of live records, changing nothing: run it in a read scope, so writers are not held up."""
    require_hygiene(actor, f"look for duplicate {entity} records")
    _check_entity(entity)
    if not 0 <= min_score <= 1:
        raise ValidationFailed("min_score", "must be between 0 and 1")
    return scan(session.connection(), entity, min_score=min_score)


def save_scan(*, session: Session, actor: Actor, result: ScanResult) -> ScanSummary:
    """Store a scan's pairs (see the module docstring for what happens to earlier ones); audited once, with counts."""
    require_hygiene(actor, f"store duplicate {result.entity} records")
    # Bumped first: its row lock queues a concurrent save (PostgreSQL) until this one commits, so that one then
    # reads these pairs instead of inserting them again.
    bump_data_version(session)
    rows = session.execute(select(DuplicateCandidate.id, DuplicateCandidate.a_id, DuplicateCandidate.b_id,
                                  DuplicateCandidate.status).where(DuplicateCandidate.entity == result.entity)).all()
    stored = {(a, b): (pair_id, status) for pair_id, a, b, status in rows}
    now = utcnow()
    new, refresh, decided = [], [], 0
    for a, b, score, reasons in result.pairs.itertuples(index=False):
        pair_id, status = stored.pop((int(a), int(b)), (None, None))
        if pair_id is None:
            new.append({"entity": result.entity, "a_id": int(a), "b_id": int(b), "score": float(score),
                        "reasons": reasons, "status": PairStatus.OPEN.value, "scanned_at": now, "created_at": now,
                        "updated_at": now, "version": 1})
        elif status == PairStatus.OPEN:
            refresh.append({"id": pair_id, "score": float(score), "reasons": reasons, "scanned_at": now})
        else:
            decided += 1
    gone = [pair_id for pair_id, status in stored.values() if status == PairStatus.OPEN]
    for lo in range(0, len(gone), _CHUNK):
        session.execute(delete(DuplicateCandidate).where(DuplicateCandidate.id.in_(gone[lo:lo + _CHUNK])))
    if refresh:  # derived data: neither the version nor updated_at move, so no one's open page goes stale
        session.execute(update(DuplicateCandidate), refresh)
    if new:
        session.execute(insert(DuplicateCandidate), new)
    summary = ScanSummary(entity=result.entity, found=len(result.pairs), new=len(new), refreshed=len(refresh),
                          removed=len(gone), decided=decided, scanned_at=now, stats=result.stats)
    audit(session, actor_id=actor.id, entity="duplicate_candidate", record_id=0, action="scan",
          context=f"{result.entity}: {summary.found} pairs, {summary.new} new, {summary.removed} gone"[:80])
    return summary


def scan_duplicates(*, engine: Engine, actor: Actor, entity: str, min_score: float = MIN_SCORE) -> ScanSummary:
    """Find and store: the scan reads in its own read transaction, then one short write transaction stores it."""
    with read_scope(engine) as session:
        result = find_duplicates(session=session, actor=actor, entity=entity, min_score=min_score)
    with session_scope(engine) as session:
        return save_scan(session=session, actor=actor, result=result)


def list_duplicates(*, session: Session, actor: Actor, entity: str, status: PairStatus = PairStatus.OPEN,
                    limit: int = 50, offset: int = 0) -> DuplicatePage:
    """One page of stored pairs, best first, of records the actor may read (open pairs: of live records only)."""
    require_hygiene(actor, f"see duplicate {entity} records")
    _check_entity(entity)
    model = _MODELS[entity]
    a, b = aliased(model), aliased(model)
    conds = [DuplicateCandidate.entity == entity, DuplicateCandidate.status == PairStatus(status).value]
    if status == PairStatus.OPEN:
        conds += [a.deleted_at.is_(None), b.deleted_at.is_(None)]
    readable = readable_owner_ids(session, actor, "contacts") if entity == "contact" else None
    if readable is not None:  # companies are shared context: whoever may read contacts may read them
        conds += [a.owner_id.in_(readable), b.owner_id.in_(readable)]
    joined = (select(DuplicateCandidate, a, b).join(a, a.id == DuplicateCandidate.a_id)
              .join(b, b.id == DuplicateCandidate.b_id).where(*conds))
    page = session.exec(joined.order_by(DuplicateCandidate.score.desc(), DuplicateCandidate.a_id,
                                        DuplicateCandidate.b_id).limit(limit).offset(offset)).all()
    counted = session.exec(select(func.count()).select_from(
        joined.with_only_columns(DuplicateCandidate.id).limit(COUNT_CAP + 1).subquery())).one()
    scanned_at = session.exec(select(func.max(DuplicateCandidate.scanned_at))
                              .where(DuplicateCandidate.entity == entity)).one()
    return DuplicatePage(rows=[_view(pair, x, y) for pair, x, y in page], total=min(counted, COUNT_CAP),
                         capped=counted > COUNT_CAP, scanned_at=scanned_at)


def _describe(record: Contact | Company) -> tuple[str, str]:
    """(name, detail) of one side of a pair, as the page shows it."""
    if isinstance(record, Contact):
        return f"{record.first_name} {record.last_name}".strip(), " · ".join(filter(None, (record.email, record.phone)))
    return record.name, " · ".join(filter(None, (record.domain, record.country)))


def _view(pair: DuplicateCandidate, a: Contact | Company, b: Contact | Company) -> DuplicatePairView:
    (a_name, a_detail), (b_name, b_detail) = _describe(a), _describe(b)
    return DuplicatePairView(id=pair.id, entity=pair.entity, a_id=pair.a_id, b_id=pair.b_id, a_name=a_name,
                             b_name=b_name, a_detail=a_detail, b_detail=b_detail, score=pair.score,
                             reasons=list(pair.reasons), status=PairStatus(pair.status), scanned_at=pair.scanned_at,
                             version=pair.version)


def _decide(session: Session, actor: Actor | None, pair: DuplicateCandidate, status: PairStatus,
            context: str | None = None) -> None:
    """Set a pair's status, with who decided and when (cleared when it opens again), audited per field."""
    decided = status != PairStatus.OPEN
    diff = apply_changes(pair, {"status": status.value, "decided_by_id": actor.id if actor and decided else None,
                                "decided_at": utcnow() if decided else None})
    audit(session, actor_id=actor.id if actor else None, entity="duplicate_candidate", record_id=pair.id,
          action="update", changes=diff, record_version=pair.version, context=context)


def _readable_pair(session: Session, actor: Actor, pair_id: int) -> DuplicateCandidate:
    """The pair, locked, once the actor may use the hygiene tools and read both of its records."""
    require_hygiene(actor, "decide about duplicates")
    pair = load_for_update(session, DuplicateCandidate, pair_id, label="Duplicate pair")
    for record_id in (pair.a_id, pair.b_id):
        record = session.get(_MODELS[pair.entity], record_id)
        if record is None:
            raise NotFound(f"{pair.entity.capitalize()} {record_id} does not exist")
        if pair.entity == "contact":
            require_read(session, actor, "contacts", record.owner_id, f"contact {record_id}")
    return pair


def dismiss_duplicate(*, session: Session, actor: Actor, pair_id: int, seen_version: int) -> DuplicatePairView:
    """Mark an open pair "not a duplicate", so later scans leave it alone."""
    return _move(session, actor, pair_id, seen_version, PairStatus.OPEN, PairStatus.DISMISSED)


def reopen_duplicate(*, session: Session, actor: Actor, pair_id: int, seen_version: int) -> DuplicatePairView:
    """Undo a dismissal: the pair is open again (a later scan refreshes or removes it like any open pair)."""
    return _move(session, actor, pair_id, seen_version, PairStatus.DISMISSED, PairStatus.OPEN)


def _move(session: Session, actor: Actor, pair_id: int, seen_version: int, status: PairStatus,
          to: PairStatus) -> DuplicatePairView:
    """Take a pair the actor may read, seen at `seen_version`, from `status` to `to`."""
    pair = _readable_pair(session, actor, pair_id)
    check_version(session, entity="duplicate_candidate", record=pair, seen_version=seen_version)
    if pair.status != status:
        raise ValidationFailed("status", f"this pair is {pair.status}, not {status}")
    _decide(session, actor, pair, to)
    return _view(pair, *(session.get(_MODELS[pair.entity], i) for i in (pair.a_id, pair.b_id)))


def _stored_pair(session: Session, entity: str, a_id: int, b_id: int) -> DuplicateCandidate | None:
    _check_entity(entity)
    lo, hi = sorted((a_id, b_id))
    return session.exec(select(DuplicateCandidate).where(
        DuplicateCandidate.entity == entity, DuplicateCandidate.a_id == lo, DuplicateCandidate.b_id == hi)
        .with_for_update()).first()


def mark_merged(session: Session, entity: str, a_id: int, b_id: int, *, actor: Actor | None = None,
                context: str | None = None) -> bool:
    """Record that these two records were merged (either order), if a scan had paired them; True if it had.

    Bookkeeping inside crm.hygiene.merge's transaction, which has checked the rights; audited with its context."""
    pair = _stored_pair(session, entity, a_id, b_id)
    if pair is None or pair.status == PairStatus.MERGED:
        return False
    _decide(session, actor, pair, PairStatus.MERGED, context)
    return True


def mark_unmerged(session: Session, entity: str, a_id: int, b_id: int, *, actor: Actor | None = None,
                  context: str | None = None) -> bool:
    """Undo mark_merged when a merge is undone: the pair is open again. True if there was a merged pair."""
    pair = _stored_pair(session, entity, a_id, b_id)
    if pair is None or pair.status != PairStatus.MERGED:
        return False
    _decide(session, actor, pair, PairStatus.OPEN, context)
    return True
