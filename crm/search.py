"""Fast, Unicode-aware search: normalised tokens in an indexed table, matched by prefix.

A contact is indexed under the words of its name, the name written without spaces (for scripts such as Chinese
and Thai, where people type names unbroken), its email and the email's local part, and its phone's digits (E.164
and national). A company is indexed under its name's words and its domain. A query is normalised the same way
(crm.text.normalize_name: NFKC, case-folded, Latin accents removed) and every query word must be the prefix of
some token of the record. Prefix ranges (`token >= 'ab' AND token < 'ac'`) walk the primary key on both SQLite
and PostgreSQL, so a search costs a few index probes whatever the table size.
"""
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import phonenumbers
from sqlalchemy import Connection, delete, insert, intersect, select, union_all
from sqlalchemy.sql import Select
from sqlmodel import Session

from crm.models import Company, Contact, SearchToken
from crm.text import normalize_name

TOKEN_LENGTH = 120
_PUNCTUATION = re.compile(r"[\W_]+", re.UNICODE)
_PHONE_QUERY = re.compile(r"^\+?[\d\s().\-/]+$")
# Scripts written without spaces between the parts of a name.
_UNSPACED = ((0x0E00, 0x0E7F), (0x2E80, 0x9FFF), (0xAC00, 0xD7AF), (0xF900, 0xFAFF), (0x20000, 0x3FFFF))


def _unspaced(text: str) -> bool:
    return not text.isascii() and any(lo <= ord(ch) <= hi for ch in text for lo, hi in _UNSPACED)


def _words(normalized: str) -> set[str]:
    """The words of a normalised text, each also without its punctuation ("o'brien" → also "obrien")."""
    words = set()
    for word in normalized.split():
        words.add(word)
        if not word.isalnum():
            bare = _PUNCTUATION.sub("", word)
            if bare:
                words.add(bare)
    return words


def _ascii_digits(text: str) -> str:
    """Digits in any script (Persian, Arabic-Indic, full-width ...) as ASCII; everything else dropped."""
    return "".join(str(unicodedata.digit(ch)) for ch in text if unicodedata.digit(ch, None) is not None)


def _phone_tokens(phone: str | None) -> set[str]:
    """The digits of a stored (E.164) phone, with and without its country calling code."""
    if not phone:
        return set()
    digits = _ascii_digits(phone)
    tokens = {digits}
    # Calling codes are prefix-free, so the first known prefix of one to three digits is the code.
    for length in (1, 2, 3):
        if int(digits[:length] or 0) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            tokens.add(digits[length:])
            break
    return {t for t in tokens if t}


def contact_tokens(first_name: str | None, last_name: str | None, email: str | None, phone: str | None) -> set[str]:
    first, last = normalize_name(first_name), normalize_name(last_name)
    tokens = _words(first) | _words(last)
    first, last = first.replace(" ", ""), last.replace(" ", "")
    if first and last and _unspaced(first + last):
        tokens |= {first + last, last + first}
    if email:
        email = email.casefold()
        tokens |= {email, email.split("@", 1)[0]}
    return {t[:TOKEN_LENGTH] for t in tokens | _phone_tokens(phone) if t}


def company_tokens(name: str | None, domain: str | None) -> set[str]:
    normalized = normalize_name(name)
    tokens = _words(normalized)
    joined = normalized.replace(" ", "")
    if joined and _unspaced(joined):
        tokens.add(joined)
    if domain:
        tokens.add(domain.casefold())
    return {t[:TOKEN_LENGTH] for t in tokens if t}


@dataclass(frozen=True)
class Query:
    """A parsed search: the prefixes every match must have, and whether it was read as a phone number."""
    terms: tuple[str, ...]
    phone: bool = False

    def __bool__(self) -> bool:
        return bool(self.terms)


def parse_query(text: str | None) -> Query:
    """Read what someone typed into the search box. Phone-like input matches by digits, leading zeros dropped
    (so "0912 345" finds +98 912 345 …, and "+1 555" finds +1 555 …)."""
    text = (text or "").strip()
    if not text:
        return Query(())
    folded = unicodedata.normalize("NFKC", text)
    digits = _ascii_digits(folded)
    if len(digits) >= 3 and _PHONE_QUERY.match("".join("0" if ch.isdigit() else ch for ch in folded)):
        return Query((digits.lstrip("0") or digits,), phone=True)
    words = normalize_name(text).split()
    return Query(tuple(dict.fromkeys(w[:TOKEN_LENGTH] for w in words)))


def _upper_bound(prefix: str) -> str:
    """The smallest string above every string that starts with `prefix`, in code-point order."""
    last = ord(prefix[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # skip the surrogates, which are not characters
        last = 0xE000
    return prefix[:-1] + chr(last)


def matching_ids(entity: str, query: Query) -> Select:
    """SELECT record_id of the records of `entity` that have a token starting with each term of the query."""
    selects = [
        select(SearchToken.record_id).where(SearchToken.entity == entity, SearchToken.token >= term,
                                            SearchToken.token < _upper_bound(term))
        for term in query.terms
    ]
    return selects[0] if len(selects) == 1 else intersect(*selects)


def matching_contact_ids(query: Query) -> Select:
    """SELECT id of the contacts that match by their own tokens or, unless the query is a phone number, by their
    company's, as one set (duplicates allowed: an IN-set removes them while it is built)."""
    own = matching_ids("contact", query)
    if query.phone:
        return own
    if len(query.terms) > 1:  # SQLite does not accept a parenthesised compound inside another compound
        own = select(own.subquery().c.record_id)
    return union_all(own, select(Contact.id).where(Contact.company_id.in_(matching_ids("company", query))))


def _rows(entity: str, tokens_by_id: dict[int, set[str]]) -> list[dict]:
    return [{"entity": entity, "record_id": rid, "token": t} for rid, tokens in tokens_by_id.items() for t in tokens]


def reindex(session: Session, entity: str, ids: Iterable[int]) -> None:
    """Refresh the tokens of these records from their current rows (deleted rows keep theirs: restore is cheap,
    and list queries filter on deleted_at anyway). Call after any write that changes a name, email, phone or domain."""
    ids = sorted(set(ids))
    model = _MODELS[entity]
    for lo in range(0, len(ids), 500):
        chunk = ids[lo:lo + 500]
        session.execute(delete(SearchToken).where(SearchToken.entity == entity, SearchToken.record_id.in_(chunk)))
        rows = _rows(entity, _tokens_for(session.connection(), entity, model.id.in_(chunk)))
        if rows:
            session.execute(insert(SearchToken), rows)


_MODELS = {"contact": Contact, "company": Company}


def _tokens_for(conn: Connection, entity: str, where) -> dict[int, set[str]]:
    if entity == "contact":
        stmt = select(Contact.id, Contact.first_name, Contact.last_name, Contact.email, Contact.phone)
        build = lambda r: contact_tokens(r[1], r[2], r[3], r[4])  # noqa: E731
    else:
        stmt = select(Company.id, Company.name, Company.domain)
        build = lambda r: company_tokens(r[1], r[2])  # noqa: E731
    return {row[0]: build(row) for row in conn.execute(stmt.where(where))}


def rebuild_search_index(conn: Connection, *, batch: int = 50_000) -> int:
    """Rebuild every token from scratch (after a migration, a restore or a bulk load); returns rows written."""
    conn.execute(delete(SearchToken))
    written = 0
    for entity, model in _MODELS.items():
        top = conn.execute(select(model.id).order_by(model.id.desc()).limit(1)).scalar() or 0
        for lo in range(0, top, batch):
            rows = _rows(entity, _tokens_for(conn, entity, (model.id > lo) & (model.id <= lo + batch)))
            if rows:
                conn.execute(insert(SearchToken), rows)
                written += len(rows)
    return written
