"""Duplicate candidates: pairs of contacts or companies a scan found alike, and what people decided about them."""
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from crm.clock import utcnow
from crm.models.base import CRMTable, check_in, json_column


class PairStatus(StrEnum):
    OPEN = "open"  # found by the latest scan, waiting for someone to look
    DISMISSED = "dismissed"  # "not a duplicate": kept, so that later scans do not bring it back
    MERGED = "merged"  # crm.hygiene.merge joined the two records


class DuplicateCandidate(CRMTable, table=True):
    """One pair, canonical (a_id < b_id), with the score and reasons of the scan that last saw it."""
    __tablename__ = "duplicate_candidate"
    __table_args__ = (
        UniqueConstraint("entity", "a_id", "b_id", name="uq_duplicate_pair"),
        CheckConstraint(check_in("entity", ("contact", "company")), name="entity"),
        CheckConstraint(check_in("status", list(PairStatus)), name="status"),
        CheckConstraint("a_id < b_id", name="canonical"),
        CheckConstraint("score >= 0 AND score <= 1", name="score"),
        # The page lists one entity's open pairs, best first.
        Index("ix_duplicate_candidate_list", "entity", "status", "score"),
    )
    entity: str = Field(max_length=20)
    a_id: int
    b_id: int
    score: float
    reasons: list = Field(default_factory=list, sa_column=json_column(nullable=False))
    status: str = Field(default=PairStatus.OPEN, max_length=10)
    scanned_at: datetime = Field(default_factory=utcnow)
    decided_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    decided_at: datetime | None = None


class DuplicatePairView(SQLModel):
    """A pair as the page shows it: both records' names and identifiers side by side."""
    id: int
    entity: str
    a_id: int
    b_id: int
    a_name: str
    b_name: str
    a_detail: str  # contacts: email and phone; companies: domain and country
    b_detail: str
    score: float
    reasons: list[str]
    status: PairStatus
    scanned_at: datetime
    version: int
