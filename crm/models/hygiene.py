"""Data-hygiene jobs that can be reverted: bulk archives, formatting runs and list merges (issue 8)."""
from datetime import datetime

from sqlalchemy import CheckConstraint, Index
from sqlmodel import Field, SQLModel

from crm.models.base import CRMTable, check_in, json_column

JOB_KINDS = ("archive", "format", "list_merge")
JOB_STATUSES = ("done", "reverted")


class HygieneJob(CRMTable, table=True):
    """One bulk hygiene action by one person, with its parameters and, once reverted, what the revert did."""
    __tablename__ = "hygiene_job"
    __table_args__ = (
        CheckConstraint(check_in("kind", JOB_KINDS), name="kind"),
        CheckConstraint(check_in("status", JOB_STATUSES), name="status"),
        Index("ix_hygiene_job_kind", "kind", "id"),
    )
    kind: str = Field(max_length=20)
    status: str = Field(default="done", max_length=10)
    actor_id: int | None = Field(default=None, foreign_key="app_user.id")
    params: dict = Field(default_factory=dict, sa_column=json_column())  # e.g. {"days": 365}
    record_count: int = 0
    reverted_at: datetime | None = None
    reverted_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    summary: dict = Field(default_factory=dict, sa_column=json_column())  # the revert's restored/skipped counts


class HygieneChange(SQLModel, table=True):
    """What a job did to one record: the values before and after, and the version it left, so a revert can restore
    exactly and skip records edited since. Archive changes carry no values (live before, deleted at the job's time)."""
    __tablename__ = "hygiene_change"
    __table_args__ = (
        Index("ix_hygiene_change_job_record", "job_id", "record_id"),
        Index("ix_hygiene_change_record", "entity", "record_id"),  # a person's erasure clears their values
    )
    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="hygiene_job.id")
    entity: str = Field(max_length=20)  # contact | company | segment_member
    record_id: int
    version_after: int | None = None
    before: dict | None = Field(default=None, sa_column=json_column())
    after: dict | None = Field(default=None, sa_column=json_column())
