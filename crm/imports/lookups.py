"""Finding the records a row refers to (its company, owner, product, stage ...) without a query per row.

Small tables are read once per import; contacts and deals, which can be millions, are fetched per chunk for the
values the chunk names. Names compare case- and space-insensitively (values.fold), never fuzzily: a miss is an
error whose reason suggests the closest known value. Records created earlier in the same import are registered
here too, so later rows can refer to them (in a dry run they get negative placeholder ids).
"""
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlmodel import Session

from crm.imports.values import fold, suggestion, unknown
from crm.models import Company, Contact, Deal, LostReason, Pipeline, Product, Stage, Team, User
from crm.validation import normalize_domain


class Deferred(Exception):
    """The reference names a row of this same file that has not been imported yet: retry the row at the end."""


@dataclass
class StageInfo:
    id: int
    pipeline_id: int
    name: str
    position: int
    is_won: bool
    is_lost: bool


@dataclass
class Index:
    """One kind of record, by each of its keys: {key kind: {folded value: {ids}}}, plus a display name per id."""
    keys: dict[str, dict[str, set[int]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(set)))
    names: dict[int, str] = field(default_factory=dict)
    _known: tuple[str, ...] | None = None

    def add(self, record_id: int, label: str | None, /, **keys: str | None) -> None:
        if label is not None:
            self.names[record_id] = label
            self._known = None
        for kind, value in keys.items():
            if value:
                self.keys[kind][fold(value)].add(record_id)

    def find(self, kind: str, value: str) -> set[int]:
        return self.keys.get(kind, {}).get(fold(value), set())

    def known(self) -> tuple[str, ...]:
        """The display names, sorted, for "did you mean" (cached until a record is added)."""
        if self._known is None:
            self._known = tuple(sorted(set(self.names.values())))
        return self._known


def _looks_like_domain(value: str) -> str | None:
    if "." not in value or " " in value.strip():
        return None
    try:
        return normalize_domain(value)
    except Exception:  # ValidationFailed: not a domain, so try the name instead
        return None


class Lookups:
    def __init__(self, session: Session):
        self.session = session
        self.companies, self.users, self.products = Index(), Index(), Index()
        self.teams, self.lost_reasons, self.pipelines = Index(), Index(), Index()
        self.contacts, self.deals = Index(), Index()
        self.user_active: dict[int, bool] = {}
        self.user_team: dict[int, int | None] = {}
        self.product_price: dict[int, float] = {}
        self.stages: dict[int, list[StageInfo]] = defaultdict(list)  # pipeline id -> stages in order
        self.default_pipeline: int | None = None
        self.pending: dict[str, set[str]] = {}  # kind -> folded keys of rows of this file not imported yet
        self._fetched: dict[str, set[str]] = defaultdict(set)
        self._load()

    def _load(self) -> None:
        ex = self.session.execute
        for i, name, domain, ext in ex(select(Company.id, Company.name, Company.domain, Company.external_id)
                                       .where(Company.deleted_at.is_(None))):
            self.companies.add(i, name, name=name, domain=domain, external_id=ext)
        for i, email, name, active, team in ex(select(User.id, User.email, User.full_name, User.active, User.team_id)):
            self.add_user(i, email, name, active, team)
        for i, name, sku, price in ex(select(Product.id, Product.name, Product.sku, Product.list_price)
                                      .where(Product.deleted_at.is_(None))):
            self.add_product(i, name, sku, price)
        for i, name in ex(select(Team.id, Team.name)):
            self.teams.add(i, name, name=name)
        for i, name in ex(select(LostReason.id, LostReason.name).where(LostReason.deleted_at.is_(None))):
            self.lost_reasons.add(i, name, name=name)
        for i, name, default in ex(select(Pipeline.id, Pipeline.name, Pipeline.is_default)
                                   .where(Pipeline.deleted_at.is_(None)).order_by(Pipeline.position)):
            self.pipelines.add(i, name, name=name)
            if default or self.default_pipeline is None:
                self.default_pipeline = i
        for s in self.session.execute(select(Stage).where(Stage.deleted_at.is_(None))
                                      .order_by(Stage.pipeline_id, Stage.position)).scalars():
            self.add_stage(StageInfo(s.id, s.pipeline_id, s.name, s.position, s.is_won, s.is_lost))

    # Registration (existing rows and rows this import creates) ----------------------------------------------
    def add_user(self, i: int, email: str, name: str, active: bool = True, team: int | None = None) -> None:
        self.users.add(i, name, email=email, name=name)
        self.user_active[i], self.user_team[i] = active, team

    def add_product(self, i: int, name: str, sku: str | None, price: float) -> None:
        self.products.add(i, name, name=name, sku=sku)
        self.product_price[i] = price

    def add_stage(self, stage: StageInfo) -> None:
        self.stages[stage.pipeline_id].append(stage)

    # Resolution --------------------------------------------------------------------------------------------
    def _one(self, index: Index, what: str, value: str, ids: set[int], pending: str | None = None,
             suggest: bool = True) -> int:
        if len(ids) == 1:
            return next(iter(ids))
        if len(ids) > 1:
            raise ValueError(f"{what} {value!r} is ambiguous: {len(ids)} records match; use an external id")
        if pending and fold(value) in self.pending.get(pending, ()):
            raise Deferred(value)
        raise unknown(what, value, index.known() if suggest else ())

    def company(self, value: str) -> int:
        ids = self.companies.find("external_id", value)
        if not ids and (domain := _looks_like_domain(value)):
            ids = self.companies.find("domain", domain)
        if not ids:
            ids = self.companies.find("name", value)
        return self._one(self.companies, "company", value, ids, pending="company")

    def user(self, value: str, *, active: bool = True) -> int:
        kind = "email" if "@" in value else "name"
        user_id = self._one(self.users, "user", value, self.users.find(kind, value.strip().lower() if kind == "email"
                                                                        else value), pending="user")
        if active and not self.user_active.get(user_id, True):
            raise ValueError(f"user {value!r} is not active")
        return user_id

    def product(self, value: str) -> int:
        ids = self.products.find("name", value) or self.products.find("sku", value)
        return self._one(self.products, "product", value, ids)

    def team(self, value: str) -> int:
        return self._one(self.teams, "team", value, self.teams.find("name", value), pending="team")

    def lost_reason(self, value: str) -> int:
        return self._one(self.lost_reasons, "lost reason", value, self.lost_reasons.find("name", value))

    def pipeline(self, value: str) -> int:
        return self._one(self.pipelines, "pipeline", value, self.pipelines.find("name", value))

    def stage(self, pipeline_id: int, value: str) -> StageInfo:
        stages = self.stages.get(pipeline_id, [])
        found = [s for s in stages if fold(s.name) == fold(value)]
        if len(found) == 1:
            return found[0]
        pipeline = self.pipelines.names.get(pipeline_id, pipeline_id)
        hint = suggestion(value, [s.name for s in stages])
        raise ValueError(f"unknown stage {value!r} in the pipeline {pipeline!r}{hint}")

    def contact(self, value: str) -> int:
        ids = self.contacts.find("external_id", value) or self.contacts.find("email", value.strip().lower())
        return self._one(self.contacts, "contact", value, ids, suggest=False)

    def deal(self, value: str) -> int:
        return self._one(self.deals, "deal", value, self.deals.find("external_id", value), suggest=False)

    # Per-chunk fetching of the big tables --------------------------------------------------------------------
    def prefetch(self, kind: str, values: Iterable[str]) -> None:
        """Load the contacts or deals these cell values may name (by external id or email)."""
        wanted = {v.strip() for v in values if v and v.strip()} - self._fetched[kind]
        if not wanted:
            return
        self._fetched[kind] |= wanted
        chunk = sorted(wanted)
        for lo in range(0, len(chunk), 500):
            part = chunk[lo:lo + 500]
            if kind == "contact":
                lower = [p.lower() for p in part]
                stmt = select(Contact.id, Contact.email, Contact.external_id, Contact.first_name, Contact.last_name) \
                    .where(Contact.deleted_at.is_(None), (Contact.external_id.in_(part) | Contact.email.in_(lower)))
                for i, email, ext, first, last in self.session.execute(stmt):
                    self.contacts.add(i, f"{first} {last}".strip(), email=email, external_id=ext)
            else:
                stmt = select(Deal.id, Deal.external_id, Deal.title).where(Deal.deleted_at.is_(None),
                                                                           Deal.external_id.in_(part))
                for i, ext, title in self.session.execute(stmt):
                    self.deals.add(i, title, external_id=ext)
