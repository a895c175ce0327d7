"""One duplicate scan in memory: read every live contact (or company) in one query, pick the pairs to compare
(crm.hygiene.duplicates_blocking), score them (crm.hygiene.duplicates_match) and keep those above a threshold.

Reads only; crm.hygiene.duplicates stores the result. Deleted records are not read, so they never pair.
"""
import re
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import Connection, select

from crm.hygiene.duplicates_blocking import (
    cross_pairs, factorize, same_value_pairs, similar_name_pairs, unique_pairs,
)
from crm.hygiene.duplicates_match import (
    COMPANY_SIGNALS, CONTACT_SIGNALS, NAME_MATCH, NameComparison, NameForms, Signal, compare, evidence_bits,
    name_similarity, name_tokens, pair_reasons, to_score,
)
from crm.models import Company, Contact

ENTITIES = ("contact", "company")
_NOT_DIGIT = re.compile(r"[^0-9]")


@dataclass
class Records:
    """The live records of one entity, in id order, with one integer code per value of each signal (-1: none)."""
    ids: np.ndarray
    name_keys: list[str]
    codes: dict[str, np.ndarray]


def _columns(conn: Connection, stmt) -> list[list]:
    """The result's columns as lists, fetched in slices so that a million rows never sit in memory as row objects."""
    columns: list[list] = [[] for _ in stmt.selected_columns]
    for part in conn.execution_options(stream_results=True).execute(stmt).partitions(50_000):
        for column, values in zip(columns, zip(*part)):
            column.extend(values)
    return columns


def _codes(values: list, clean) -> np.ndarray:
    return factorize([clean(v) if v else None for v in values])


def load_contacts(conn: Connection) -> Records:
    """Emails compared case-insensitively, phones by their digits (stored as E.164, so formats do not matter)."""
    ids, names, emails, phones, companies = _columns(conn, select(
        Contact.id, Contact.name_key, Contact.email, Contact.phone, Contact.company_id)
        .where(Contact.deleted_at.is_(None)).order_by(Contact.id))
    return Records(ids=np.array(ids, dtype=np.int64), name_keys=names,
                   codes={"email": _codes(emails, lambda e: e.strip().casefold()),
                          "phone": _codes(phones, lambda p: _NOT_DIGIT.sub("", p)),
                          "company": np.array([-1 if c is None else c for c in companies], dtype=np.int64)})


def load_companies(conn: Connection) -> Records:
    ids, names, domains, countries = _columns(conn, select(Company.id, Company.name_key, Company.domain,
                                                           Company.country)
                                              .where(Company.deleted_at.is_(None)).order_by(Company.id))
    return Records(ids=np.array(ids, dtype=np.int64), name_keys=names,
                   codes={"domain": _codes(domains, lambda d: d.strip().casefold().removeprefix("www.")),
                          "country": _codes(countries, str.upper)})


@dataclass
class ScanResult:
    """The pairs at or above the threshold, best first (columns a_id < b_id, score, reasons), and what it took."""
    entity: str
    pairs: pd.DataFrame
    stats: dict = field(default_factory=dict)


def _names(records: Records, company: bool) -> tuple[np.ndarray, NameForms, list[tuple[str, ...]]]:
    """Each record's name code (-1: no name) over distinct compared forms, and those forms."""
    key_code = factorize(records.name_keys)  # codes follow first appearance, as dict.fromkeys does
    key_tokens = [name_tokens(k, company=company) for k in dict.fromkeys(k for k in records.name_keys if k)]
    form_of_key = np.append(factorize(key_tokens), -1)  # the appended -1 is where key code -1 (no name) lands
    tokens = list(dict.fromkeys(t for t in key_tokens if t))
    return form_of_key[key_code], NameForms.of(tokens), tokens


def _candidates(records: Records, signals: tuple[Signal, ...], name_code: np.ndarray, forms: NameForms,
                tokens: list[tuple[str, ...]], stats: dict) -> tuple[np.ndarray, np.ndarray]:
    """Positions (a < b) of the record pairs to compare: shared identifiers, same names, names one typo apart."""
    found = []
    for signal in (s for s in signals if s.blocks):
        a, b, skipped = same_value_pairs(records.codes[signal.column])
        found.append((a, b))
        stats[f"common_{signal.column}_skipped"] = skipped
    a, b, skipped = same_value_pairs(name_code)
    found.append((a, b))
    stats["common_names_skipped"] = skipped
    i, j = similar_name_pairs(tokens)
    alike = name_similarity(forms, i, j) >= NAME_MATCH
    stats["similar_names"] = int(alike.sum())
    found.append(cross_pairs(name_code, i[alike], j[alike]))
    return unique_pairs(np.concatenate([p[0] for p in found]), np.concatenate([p[1] for p in found]),
                        len(records.ids))


def find_pairs(records: Records, *, entity: str, min_score: float) -> ScanResult:
    """Score every candidate pair of these records and keep those scoring at least `min_score`."""
    started = time.perf_counter()
    signals = CONTACT_SIGNALS if entity == "contact" else COMPANY_SIGNALS
    stats: dict = {"records": len(records.ids)}
    name_code, forms, tokens = _names(records, company=entity == "company")
    stats["distinct_names"] = len(tokens)
    a, b = _candidates(records, signals, name_code, forms, tokens, stats)
    stats["compared"] = len(a)
    states = {s.column: compare(records.codes[s.column], a, b) for s in signals}
    names = NameComparison.of(forms, name_code, a, b)
    name_bits = names.bits()
    score = np.round(to_score(evidence_bits(signals, states, name_bits)), 3)
    kept = np.flatnonzero(score >= min_score)
    pairs = pd.DataFrame({"a_id": records.ids[a[kept]], "b_id": records.ids[b[kept]], "score": score[kept],
                          "reasons": [pair_reasons(signals, states, names, name_bits, k) for k in kept.tolist()]})
    pairs = pairs.sort_values(["score", "a_id", "b_id"], ascending=[False, True, True], ignore_index=True)
    stats["found"] = len(pairs)
    stats["seconds"] = round(time.perf_counter() - started, 2)
    return ScanResult(entity=entity, pairs=pairs, stats=stats)


def scan(conn: Connection, entity: str, *, min_score: float) -> ScanResult:
    """Read and score one entity's live records (no rights checked here: crm.hygiene.duplicates does that)."""
    started = time.perf_counter()
    records = load_contacts(conn) if entity == "contact" else load_companies(conn)
    loaded = time.perf_counter() - started
    result = find_pairs(records, entity=entity, min_score=min_score)
    result.stats = {"load_seconds": round(loaded, 2), **result.stats}
    return result
