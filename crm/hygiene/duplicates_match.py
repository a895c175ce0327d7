"""How alike two contacts or two companies are: the forms of a name that are compared, name similarity, and a pair's
score with its reasons. Pure functions over arrays, so that a scan scores millions of candidate pairs at once.

Names arrive normalised by crm.text.normalize_name (NFKC, case-folded, Persian letters unified, Latin accents
removed; Thai and other marks kept, because there they are vowels and tones). Here they are split into words at
spaces and punctuation ("o'brien" → "o", "brien"); companies also lose legal forms ("GmbH", "S.p.A.", "บริษัท",
"有限公司"). A name is compared several ways and the best counts: the words sorted (order does not matter), and
the words run together (Chinese and Thai are typed with or without spaces), in order and last-first.

The score adds up evidence in bits (log2 of how much more likely the pair is a duplicate), starting from a
sceptical prior, and maps the sum to 0..1 with 1 / (1 + 2^-bits). Agreeing values add bits, values that both
records have but that differ take some away, and a value one record lacks says nothing. docs/hygiene.md has the
table and worked examples.
"""
import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from rapidfuzz import fuzz, process

from crm.text import normalize_name

NAME_MATCH = 0.85  # a name this similar (or more) is evidence for the pair
NAME_PARTIAL = 0.6  # between the two: alike but not the same name
PRIOR_BITS = -4.0

# Legal forms are compared away: "Acme GmbH" and "ACME AG" are the same name. Words without their punctuation,
# normalised as names are (NFKC turns the Thai "ำ" into two characters, for one).
LEGAL_FORMS = frozenset(normalize_name(w) for w in (
    "inc", "incorporated", "corp", "corporation", "co", "company", "ltd", "limited", "llc", "llp", "lp", "plc",
    "gmbh", "mbh", "ag", "kg", "ohg", "ug", "ev", "ek", "kgaa", "se", "sa", "sas", "sarl", "sca", "snc", "sl", "slu",
    "srl", "spa", "sapa", "bv", "nv", "oy", "ab", "as", "pty", "pvt", "kk",
    "บริษัท", "จำกัด", "มหาชน", "บจก", "หจก", "ห้างหุ้นส่วนจำกัด", "ห้างหุ้นส่วนสามัญ", "شرکت", "سهامی",
))
# Legal forms written inside the name, without spaces (Chinese and Japanese); longest first.
LEGAL_AFFIXES = tuple(normalize_name(w) for w in (
    "股份有限公司", "有限责任公司", "有限公司", "株式会社", "合同会社", "有限会社", "合資会社", "合名会社"))
# Scripts whose names can be compared with each other; letters of other scripts are named by their first word.
_SCRIPT_FAMILY = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "CJK": "CJK"}


def _split_punctuation(word: str) -> list[str]:
    """A word cut at punctuation and symbols (Unicode P* and S*); letters and marks of every script stay."""
    if word.isalnum():
        return [word]
    cut = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in word)
    return cut.split()


def name_tokens(key: str | None, *, company: bool = False) -> tuple[str, ...]:
    """The words of a normalised name, cut at punctuation; for companies without legal forms (unless nothing
    else is left)."""
    words = [_split_punctuation(w) for w in (key or "").split()]
    tokens = tuple(t for parts in words for t in parts)
    if not company:
        return tokens
    kept = (_without_affixes(t) for parts in words if "".join(parts) not in LEGAL_FORMS  # "s.p.a." and "spa"
            for t in parts if t not in LEGAL_FORMS)
    return tuple(t for t in kept if t) or tokens


def _without_affixes(word: str) -> str:
    for affix in LEGAL_AFFIXES:
        word = word.replace(affix, "")
    return word


def script_of(tokens: tuple[str, ...]) -> str:
    """The script of a name's first letter ("LATIN", "ARABIC", "THAI", "CJK" for Chinese and Japanese, ...)."""
    for ch in "".join(tokens):
        if ch.isalpha():
            first = unicodedata.name(ch, "UNKNOWN").split()[0]
            return _SCRIPT_FAMILY.get(first, first)
    return ""


def deletions(text: str) -> set[str]:
    """The text with one character left out, each way: two texts one typo apart share one of these (or the text)."""
    return {text[:i] + text[i + 1:] for i in range(len(text))}


class BlockingKeys:
    """Keys under which names one typo apart meet (they share at least one key):
    - the words run together, both ways round ("王秀英" typed in one field meets "秀英 王" in two);
    - one word: itself, and itself with one character left out;
    - two words: each word with the other, or the other with one character left out;
    - three or more: every two of its three rarest words (by `rarity`, e.g. how many names have the word; then
      alphabetically). A typo changes one word, so two names one typo apart still share two of their three.

    Keys are tuples (hashed by the caller). A scan's names share few words, so each word's variants are made once."""

    def __init__(self, rarity: Callable[[str], int] = lambda word: 0):
        self.rarity = rarity
        self._variants: dict[str, tuple[str, ...]] = {}

    def variants(self, word: str) -> tuple[str, ...]:
        """The word and, from three characters on, the word with one character left out."""
        found = self._variants.get(word)
        if found is None:
            found = self._variants[word] = (word, *deletions(word)) if len(word) >= 3 else (word,)
        return found

    def __call__(self, tokens: tuple[str, ...]) -> set[tuple[str, ...]]:
        if not tokens:
            return set()
        keys = {("=", "".join(tokens)), ("=", "".join(reversed(tokens)))}
        if len(tokens) == 1:
            word = tokens[0]
            keys.update(("~", v) for v in (self.variants(word) if len(word) >= 4 else (word,)))
        elif len(tokens) == 2:
            first, last = tokens
            keys.update((first, v) for v in self.variants(last))
            keys.update((last, v) for v in self.variants(first))
        else:
            rarest = sorted(set(tokens), key=lambda word: (self.rarity(word), word))[:3]
            keys.update(("&", a, b) for a, b in combinations(sorted(rarest), 2))
        return keys


def blocking_keys(tokens: tuple[str, ...]) -> set[tuple[str, ...]]:
    """BlockingKeys for one name, every word counted as equally rare."""
    return BlockingKeys()(tokens)


@dataclass(frozen=True)
class NameForms:
    """The compared forms of distinct names, as parallel object arrays (index = name code)."""
    ordered: np.ndarray  # words sorted, separated by spaces (so word order does not matter)
    joined: np.ndarray  # words run together
    reverse: np.ndarray  # words run together, last first
    script: np.ndarray  # a small integer per script; -1 for no letters

    @classmethod
    def of(cls, names: list[tuple[str, ...]]) -> "NameForms":
        scripts = [script_of(t) for t in names]
        codes = {s: i for i, s in enumerate(sorted(set(scripts) - {""}))}

        def column(values) -> np.ndarray:
            out = np.empty(len(names), dtype=object)
            out[:] = list(values)
            return out
        return cls(ordered=column(" ".join(sorted(t)) for t in names),
                   joined=column("".join(t) for t in names), reverse=column("".join(reversed(t)) for t in names),
                   script=np.array([codes.get(s, -1) for s in scripts], dtype=np.int64))


def name_similarity(forms: NameForms, a: np.ndarray, b: np.ndarray, *, chunk: int = 500_000) -> np.ndarray:
    """Similarity (0..1) of the names with codes a[k] and b[k]: the best of the comparisons (rapidfuzz's ratio,
    so the words sorted give its token_sort_ratio). The same code is 1 without comparing; the rest is compared in
    slices, which keeps the strings picked out for a slice small."""
    best = np.ones(len(a))
    todo = np.flatnonzero(a != b)
    for lo in range(0, len(todo), chunk):
        part = todo[lo:lo + chunk]
        x, y = a[part], b[part]
        joined_x, joined_y = forms.joined[x], forms.joined[y]
        pairs = ((forms.ordered[x], forms.ordered[y]), (joined_x, joined_y), (joined_x, forms.reverse[y]),
                 (forms.reverse[x], joined_y))
        scores = [process.cpdist(left, right, scorer=fuzz.ratio) for left, right in pairs]
        best[part] = np.maximum.reduce(scores).astype(np.float64) / 100
    return best


@dataclass(frozen=True)
class Signal:
    """A value two records can share: the bits it adds when both have it and it is the same, or when they differ."""
    column: str
    blocks: bool  # records sharing it are compared (emails, phones, domains); else it only adds evidence
    agree: float
    disagree: float
    same: str  # the reason shown when it agrees
    differ: str  # ... and when it differs


CONTACT_SIGNALS = (Signal("email", True, 12, -3, "same email", "emails differ"),
                   Signal("phone", True, 6, -2, "same phone", "phones differ"),
                   Signal("company", False, 2, -1, "same company", "different companies"))
COMPANY_SIGNALS = (Signal("domain", True, 10, -4, "same domain", "domains differ"),
                   Signal("country", False, 0, -2, "same country", "countries differ"))
NAME_BITS = {"match": (4.0, 6.0), "partial": -3.0, "differ": -5.0}  # match: from NAME_MATCH up to identical


def compare(codes: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pair: 1 if both records have the value and it is the same, -1 if both have it and it differs, else 0.
    `codes` holds one integer per record for its value, -1 where it has none."""
    ca, cb = codes[a], codes[b]
    both = (ca >= 0) & (cb >= 0)
    return np.where(both & (ca == cb), 1, np.where(both, -1, 0)).astype(np.int8)


@dataclass(frozen=True)
class NameComparison:
    """How the names of each pair compare. A name many records carry says less: when the commoner of the two names
    is carried by n other records, a match is worth log2(n) bits less (a typo of "John Smith" could be any of 40
    John Smiths), and never less than nothing."""
    similarity: np.ndarray  # 0..1; 0 where not comparable
    comparable: np.ndarray  # both records have a name, in the same script
    present: np.ndarray  # both records have a name
    carriers: np.ndarray  # records carrying the commoner of the two names
    others: np.ndarray  # records besides the pair that name could also point to (at least 1)

    @classmethod
    def of(cls, forms: NameForms, name_code: np.ndarray, a: np.ndarray, b: np.ndarray) -> "NameComparison":
        na, nb = name_code[a], name_code[b]
        present = (na >= 0) & (nb >= 0)
        if not len(forms.script):  # no record has a name
            none = np.zeros(len(a), dtype=bool)
            return cls(np.zeros(len(a)), none, none, np.ones(len(a), dtype=np.int64), np.ones(len(a), dtype=np.int64))
        comparable = present & (forms.script[np.maximum(na, 0)] == forms.script[np.maximum(nb, 0)])
        similarity = np.zeros(len(a))
        similarity[comparable] = name_similarity(forms, na[comparable], nb[comparable])
        counts = np.bincount(name_code[name_code >= 0], minlength=len(forms.script))
        carriers = np.where(present, np.maximum(counts[np.maximum(na, 0)], counts[np.maximum(nb, 0)]), 1)
        others = np.maximum(np.where(na == nb, carriers - 1, carriers), 1)  # the same name: one carrier is the pair
        return cls(similarity, comparable, present, carriers, others)

    def bits(self) -> np.ndarray:
        low, high = NAME_BITS["match"]
        match = low + (high - low) * (self.similarity - NAME_MATCH) / (1 - NAME_MATCH)
        match = np.maximum(match - np.log2(self.others), 0.0)
        graded = np.where(self.similarity >= NAME_MATCH, match,
                          np.where(self.similarity >= NAME_PARTIAL, NAME_BITS["partial"], NAME_BITS["differ"]))
        return np.where(self.comparable, graded, 0.0)

    def reason(self, k: int, bits: float) -> tuple[float, str] | None:
        """(bits, text) for pair k's names, or None when a record has no name."""
        if not self.present[k]:
            return None
        if not self.comparable[k]:
            return 0.0, "names in different scripts"
        pct = math.floor(float(self.similarity[k]) * 100 + 1e-9)  # floored, so "85 %" is always a match
        if self.similarity[k] < NAME_MATCH:
            return bits, f"names differ ({pct} %)"
        common = f" ({self.carriers[k]} records have it)" if self.others[k] > 1 else ""
        return bits, f"name {pct} %{common}"


def evidence_bits(signals: tuple[Signal, ...], states: dict[str, np.ndarray], name_bits: np.ndarray) -> np.ndarray:
    """Per pair: the prior plus what each value and the names say."""
    bits = PRIOR_BITS + name_bits
    for signal in signals:
        state = states[signal.column]
        bits = bits + np.where(state == 1, signal.agree, np.where(state == -1, signal.disagree, 0.0))
    return bits


def to_score(bits: np.ndarray) -> np.ndarray:
    """Bits of evidence as a confidence between 0 and 1 (0 bits is 0.5; each bit doubles the odds)."""
    return 1.0 / (1.0 + np.exp2(-bits))


def pair_reasons(signals: tuple[Signal, ...], states: dict[str, np.ndarray], names: NameComparison,
                 name_bits: np.ndarray, k: int) -> list[str]:
    """Pair k's reasons, strongest evidence for first and strongest against last."""
    found = []
    for signal in signals:
        state = states[signal.column][k]
        if state == 1 and signal.agree:
            found.append((signal.agree, signal.same))
        elif state == -1:
            found.append((signal.disagree, signal.differ))
    if (name := names.reason(k, float(name_bits[k]))) is not None:
        found.append(name)
    return [text for _, text in sorted(found, key=lambda item: -item[0])]
