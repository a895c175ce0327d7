"""Consistent formatting of contacts: preview, then apply as one audited job that can be reverted exactly.

What is fixed, field by field (the rules are pure functions in crm.hygiene.formatting_rules, which the preview and
the apply both call, so they agree):
- names: only a name written all in capitals or all in small letters is re-cased ("JOHN O'BRIEN" → "John O'Brien",
  "mcdonald" → "McDonald", "van der berg" as a last name → "van der Berg"); a name in mixed case ("DeVito",
  "McDonald", "van Gogh") was cased on purpose and stays, and so do capitals of one or two letters ("AJ" may be
  initials) and any name with a letter outside the Latin script (Thai, Persian, Chinese, Greek ...). Spaces are
  collapsed. "Mac" is left alone (Mack, Macy): "MACDONALD" becomes "Macdonald".
- emails: trimmed and lower-cased, as the contact form stores them (crm.validation.normalize_email);
- phones: E.164 (+66812345678), parsed with the contact's (fixed) country as default region;
- countries: ISO 3166-1 alpha-2 codes ("th", "Thailand", "UK" → "TH", "TH", "GB").
A value that cannot be fixed (a phone that is not a number, an unknown country) is listed as a problem, unchanged.
"""
from collections import defaultdict
from dataclasses import dataclass, field

import phonenumbers
from sqlalchemy import ColumnElement, and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Boolean
from sqlmodel import Session

from crm.audit import bump_data_version
from crm.clock import utcnow
from crm.errors import ValidationFailed
from crm.hygiene.jobs import (
    SHOWN, RevertResult, Skipped, changed_since, context_of, editable, refuse_or_skip, require_hygiene, start_job,
)
from crm.hygiene.formatting_rules import FIELDS, Problem, Proposal, propose
from crm.models import AuditLog, Contact, HygieneChange, HygieneJob
from crm.permissions import Actor
from crm.search import reindex
from crm.text import contact_name_key

_SEARCHED = {"first_name", "last_name", "email", "phone"}
_CHUNK = 500


# --- preview ------------------------------------------------------------------------------------------------------

class _not_e164(FunctionElement):  # noqa: N801 - used like a SQL function
    """SQL: the text is not shaped like an E.164 number (a prefilter; the rules above decide)."""
    type = Boolean()
    inherit_cache = True


@compiles(_not_e164, "sqlite")
def _not_e164_sqlite(element, compiler, **kw):
    (arg,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"({arg} NOT GLOB '+[1-9]*' OR substr({arg}, 2) GLOB '*[^0-9]*')"


@compiles(_not_e164, "postgresql")
def _not_e164_postgresql(element, compiler, **kw):
    (arg,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"({arg} !~ '^\\+[1-9][0-9]*$')"


class _has_latin(FunctionElement):  # noqa: N801 - used like a SQL function
    """SQL: the text has an ASCII letter (names in other scripts have no case to fix)."""
    type = Boolean()
    inherit_cache = True


@compiles(_has_latin, "sqlite")
def _has_latin_sqlite(element, compiler, **kw):
    (arg,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"({arg} GLOB '*[A-Za-z]*')"


@compiles(_has_latin, "postgresql")
def _has_latin_postgresql(element, compiler, **kw):
    (arg,) = (compiler.process(c, **kw) for c in element.clauses)
    return f"({arg} ~ '[A-Za-z]')"


def _one_case(column) -> ColumnElement:
    """Latin letters in one case, or stray spaces: the names the rules may change. SQLite's upper() and lower()
    change ASCII letters only, so this also holds names with accents; a name of accented capitals alone ("Ó")
    is the one kind it misses."""
    return or_(and_(_has_latin(column), or_(column == func.upper(column), column == func.lower(column))),
               column != func.trim(column), column.contains("  "))


def _tests(fields: tuple[str, ...]) -> dict[str, ColumnElement]:
    """Field -> SQL test that the field may need a fix (a cheap prefilter; the rules decide)."""
    tests = {"first_name": _one_case(Contact.first_name), "last_name": _one_case(Contact.last_name),
             "email": Contact.email != func.lower(func.trim(Contact.email)),
             "phone": _not_e164(Contact.phone),
             "country": ~Contact.country.in_(sorted(phonenumbers.SUPPORTED_REGIONS))}
    return {f: tests[f] for f in fields}


@dataclass
class FormattingPreview:
    proposals: list[Proposal] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)  # contact id -> name as it is now, for the table
    more: bool = False  # the limit was reached: apply these, then preview again for the rest


def _check_fields(fields) -> tuple[str, ...]:
    fields = tuple(dict.fromkeys(fields))
    if not fields or set(fields) - set(FIELDS):
        raise ValidationFailed("fields", f"choose among {', '.join(FIELDS)}")
    return fields


def preview_formatting(*, session: Session, actor: Actor, fields: tuple[str, ...] = FIELDS,
                       limit: int = 5000) -> FormattingPreview:
    """Every fix the rules make to the live contacts the actor may edit, up to `limit` contacts with a fix, oldest
    first. SQL narrows the table to candidates; the rules run on those, a chunk at a time."""
    require_hygiene(actor, "format contacts")
    fields = _check_fields(fields)
    preview, last_id, touched = FormattingPreview(), 0, 0
    tests = _tests(fields)
    flags = [case((test, 1), else_=0) for test in tests.values()]
    base = and_(Contact.deleted_at.is_(None), editable(session, actor, Contact.owner_id), or_(*tests.values()))
    while touched < limit:
        rows = session.execute(select(Contact.id, Contact.version, *[getattr(Contact, f) for f in FIELDS], *flags)
                               .where(base, Contact.id > last_id).order_by(Contact.id).limit(_CHUNK)).all()
        for row in rows:
            flagged = tuple(f for f, flag in zip(fields, row[2 + len(FIELDS):]) if flag)
            proposals, problems = propose(row[0], row[1], dict(zip(FIELDS, row[2:])), flagged)
            if proposals and touched >= limit:
                preview.more = True
                break
            preview.proposals += proposals
            preview.problems += problems
            touched += bool(proposals)
            if proposals:
                preview.names[row[0]] = f"{row[2]} {row[3]}".strip()
        if len(rows) < _CHUNK or preview.more:
            break
        last_id = rows[-1][0]
    return preview


# --- apply --------------------------------------------------------------------------------------------------------

@dataclass
class FormattingResult:
    job_id: int
    contacts: int  # contacts changed
    fields: int  # field values changed
    skipped_count: int = 0
    skipped: list[Skipped] = field(default_factory=list)  # the first of them: edited since the preview


def apply_formatting(*, session: Session, actor: Actor, proposals: list[Proposal]) -> FormattingResult:
    """Apply the chosen proposals as one job. A contact edited since the preview (its version moved, or a value is
    no longer what the preview showed) is skipped and named; the others change, audited field by field."""
    require_hygiene(actor, "format contacts")
    if not proposals:
        raise ValidationFailed("proposals", "choose at least one change to apply")
    chosen: dict[int, dict[str, Proposal]] = defaultdict(dict)
    for p in proposals:
        if p.field not in FIELDS:
            raise ValidationFailed("fields", f"{p.field!r} is not a field this tool formats", row=p.contact_id)
        chosen[p.contact_id][p.field] = p
    job = start_job(session, actor, "format", {"fields": sorted({p.field for p in proposals})})
    ids, skipped, writes = sorted(chosen), [], []
    for lo in range(0, len(ids), _CHUNK):
        for current in _locked(session, actor, ids[lo:lo + _CHUNK]):
            reason = _stale_choice(session, current, chosen[current["id"]])
            if reason:
                skipped.append(Skipped("contact", current["id"], reason))
            else:
                writes.append(_write(current, chosen[current["id"]].values()))
    skipped += [Skipped("contact", i, "deleted, or no longer yours to edit") for i in
                sorted(set(ids) - {w["_id"] for w in writes} - {s.record_id for s in skipped})]
    _store(session, actor, job, writes)
    job.record_count = len(writes)
    bump_data_version(session)
    changed = sum(len(w["_after"].keys() - {"name_key"}) for w in writes)
    return FormattingResult(job_id=job.id, contacts=len(writes), fields=changed, skipped_count=len(skipped),
                            skipped=skipped[:SHOWN])


def _locked(session: Session, actor: Actor, ids: list[int]) -> list[dict]:
    """The current values of these live contacts the actor may edit, locked for this transaction."""
    stmt = (select(Contact.id, Contact.version, Contact.name_key, *[getattr(Contact, f) for f in FIELDS])
            .where(Contact.id.in_(ids), Contact.deleted_at.is_(None), editable(session, actor, Contact.owner_id))
            .with_for_update())
    return [dict(zip(("id", "version", "name_key", *FIELDS), row)) for row in session.execute(stmt)]


def _stale_choice(session: Session, current: dict, chosen: dict[str, Proposal]) -> str | None:
    """Why a contact's chosen fixes no longer apply (None if they do)."""
    seen = next(iter(chosen.values())).version
    if current["version"] != seen:
        return changed_since(session, "contact", current["id"], seen) + " after the preview"
    fresh, _ = propose(current["id"], current["version"], current, tuple(chosen))
    if {(p.field, p.before, p.after) for p in fresh} != {(p.field, p.before, p.after) for p in chosen.values()}:
        return "its values are not those the preview showed"
    return None


def _write(current: dict, chosen) -> dict:
    """The update of one contact: the new values, its derived name key, and what it was before."""
    after = {p.field: p.after for p in chosen}
    before = {p.field: p.before for p in chosen}
    if after.keys() & {"first_name", "last_name"}:
        names = {**{k: current[k] for k in ("first_name", "last_name")}, **after}
        before["name_key"], after["name_key"] = current["name_key"], contact_name_key(names["first_name"],
                                                                                      names["last_name"])
    return {"_id": current["id"], "_version": current["version"] + 1, "_before": before, "_after": after}


def _store(session: Session, actor: Actor, job: HygieneJob, writes: list[dict], *, revert: bool = False) -> None:
    """Write the new values (one UPDATE per set of fields), the job's changes and the audit rows; reindex search."""
    now, context = utcnow(), context_of(job.id, revert=revert)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for w in writes:
        groups[tuple(sorted(w["_after"]))].append({"_id": w["_id"], **w["_after"], "_v": w["_version"], "_at": now})
    for columns, params in groups.items():
        values = {c: bindparam(c) for c in columns} | {"version": bindparam("_v"), "updated_at": bindparam("_at")}
        session.execute(update(Contact.__table__).where(Contact.__table__.c.id == bindparam("_id")).values(values),
                        params)
    if not revert and writes:
        session.execute(insert(HygieneChange), [
            {"job_id": job.id, "entity": "contact", "record_id": w["_id"], "version_after": w["_version"],
             "before": w["_before"], "after": w["_after"]} for w in writes])
    audits = [{"at": now, "actor_id": actor.id, "entity": "contact", "record_id": w["_id"], "action": "update",
               "field": f, "old_value": w["_before"][f], "new_value": new, "record_version": w["_version"],
               "context": context} for w in writes for f, new in w["_after"].items() if f != "name_key"]
    if audits:
        session.execute(insert(AuditLog), audits)
    reindex(session, "contact", [w["_id"] for w in writes if w["_after"].keys() & _SEARCHED])


# --- revert -------------------------------------------------------------------------------------------------------

def revert_formatting(*, session: Session, actor: Actor, job: HygieneJob, skip_edited: bool) -> RevertResult:
    """Put back every value the job changed on contacts nobody edited since (same version): the before values
    exactly, name key included; a contact edited, deleted or erased since is skipped and named."""
    changes = session.execute(select(HygieneChange).where(HygieneChange.job_id == job.id)
                              .order_by(HygieneChange.record_id)).scalars().all()
    versions = {}
    for lo in range(0, len(changes), _CHUNK):
        ids = [c.record_id for c in changes[lo:lo + _CHUNK]]
        versions |= dict(session.execute(select(Contact.id, Contact.version).where(
            Contact.id.in_(ids), Contact.deleted_at.is_(None)).with_for_update()).all())
    moved = [c for c in changes if versions.get(c.record_id) != c.version_after or not c.before]
    moved_ids = {c.record_id for c in moved}
    skipped = [Skipped("contact", c.record_id, changed_since(session, "contact", c.record_id, c.version_after))
               for c in moved[:SHOWN]]
    refuse_or_skip(job, skipped, len(moved), skip_edited=skip_edited)
    writes = [{"_id": c.record_id, "_version": c.version_after + 1, "_before": c.after, "_after": c.before}
              for c in changes if c.record_id not in moved_ids]
    _store(session, actor, job, writes, revert=True)
    return RevertResult(job_id=job.id, kind=job.kind, restored=len(writes), skipped_count=len(moved), skipped=skipped)
