"""The records the CRM keeps about itself: audit, segments, imports, merges, automations, snapshots."""
from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from crm.clock import utcnow
from crm.models.base import CRMTable, SoftDelete, json_column


class AuditLog(SQLModel, table=True):
    """Append-only: one row per changed field (or per create/delete), written in the change's transaction."""
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_record", "entity", "record_id", "id"),)
    # BIGINT on PostgreSQL; INTEGER on SQLite so that the key stays the rowid and auto-increments.
    id: int | None = Field(default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True))
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    entity: str = Field(max_length=40)
    record_id: int
    action: str = Field(max_length=20)  # create, update, delete, restore, login, ...
    field: str | None = Field(default=None, max_length=80)
    old_value: str | None = None
    new_value: str | None = None
    record_version: int | None = None  # the record's version after this change
    context: str | None = Field(default=None, max_length=80, index=True)  # e.g. "import:12", "merge:3"


class DataVersion(SQLModel, table=True):
    """A counter bumped by every audited write, so caches can be keyed on it instead of a TTL."""
    __tablename__ = "data_version"
    name: str = Field(primary_key=True, max_length=40)
    value: int = 0


class Segment(CRMTable, SoftDelete, table=True):
    __tablename__ = "segment"
    name: str = Field(max_length=120, unique=True)
    entity: str = Field(default="contact", max_length=20)
    kind: str = Field(default="dynamic", max_length=10)  # dynamic | static
    definition: dict = Field(default_factory=dict, sa_column=json_column())
    description: str | None = Field(default=None, max_length=1000)
    owner_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)


class SegmentMember(CRMTable, table=True):
    """Membership of a static segment."""
    __tablename__ = "segment_member"
    __table_args__ = (UniqueConstraint("segment_id", "record_id", name="uq_segment_member"),)
    segment_id: int = Field(foreign_key="segment.id", index=True)
    record_id: int = Field(index=True)


class SegmentSnapshot(CRMTable, table=True):
    __tablename__ = "segment_snapshot"
    segment_id: int = Field(foreign_key="segment.id", index=True)
    taken_at: datetime = Field(default_factory=utcnow)
    taken_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    purpose: str = Field(max_length=40)  # export, tag, assign, ...
    definition: dict = Field(default_factory=dict, sa_column=json_column())
    member_count: int = 0
    include_do_not_contact: bool = False


class SegmentSnapshotMember(SQLModel, table=True):
    __tablename__ = "segment_snapshot_member"
    snapshot_id: int = Field(foreign_key="segment_snapshot.id", primary_key=True)
    record_id: int = Field(primary_key=True)


class ImportJob(CRMTable, table=True):
    __tablename__ = "import_job"
    entity: str = Field(max_length=30)
    filename: str = Field(max_length=300)
    status: str = Field(default="running", max_length=20)  # running, done, failed, reverted
    dry_run: bool = False
    actor_id: int | None = Field(default=None, foreign_key="app_user.id")
    mapping: dict = Field(default_factory=dict, sa_column=json_column())
    total_rows: int = 0
    created_count: int = 0
    updated_count: int = 0
    rejected_count: int = 0
    error_file: str | None = Field(default=None, max_length=500)
    finished_at: datetime | None = None
    reverted_at: datetime | None = None
    unchanged_count: int = 0
    summary: dict = Field(default_factory=dict, sa_column=json_column())  # also created, ignored columns, warnings


class ImportChange(SQLModel, table=True):
    """What one import did to one record, with the state before, so a revert is exact."""
    __tablename__ = "import_change"
    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="import_job.id", index=True)
    entity: str = Field(max_length=30)
    record_id: int
    action: str = Field(max_length=10)  # created | updated
    before: dict | None = Field(default=None, sa_column=json_column())
    version_after: int | None = None  # the record's version the import left; a revert refuses if it moved on


class SavedMapping(CRMTable, table=True):
    __tablename__ = "saved_mapping"
    __table_args__ = (UniqueConstraint("entity", "name", name="uq_saved_mapping"),)
    entity: str = Field(max_length=30)
    name: str = Field(max_length=120)
    mapping: dict = Field(default_factory=dict, sa_column=json_column())


class MergeLog(CRMTable, table=True):
    """A merge and everything needed to undo it: both records and every moved relation."""
    __tablename__ = "merge_log"
    entity: str = Field(max_length=20)
    survivor_id: int = Field(index=True)
    merged_id: int = Field(index=True)
    actor_id: int | None = Field(default=None, foreign_key="app_user.id")
    snapshot: dict = Field(default_factory=dict, sa_column=json_column())
    undone_at: datetime | None = None
    undone_by_id: int | None = Field(default=None, foreign_key="app_user.id")


class AutomationRule(CRMTable, SoftDelete, table=True):
    __tablename__ = "automation_rule"
    name: str = Field(max_length=120, unique=True)
    trigger: str = Field(max_length=40)  # deal_enters_stage, deal_idle, contact_created, ...
    trigger_params: dict = Field(default_factory=dict, sa_column=json_column())
    action: str = Field(max_length=40)  # create_task, assign_round_robin, add_tag, ...
    action_params: dict = Field(default_factory=dict, sa_column=json_column())
    active: bool = True
    # The user the rule's round-robin assignment chose last; the next turn goes to the team's rep after them.
    # Bookkeeping, not an edit: writing it bumps neither the version nor updated_at.
    round_robin_cursor: int | None = Field(default=None, foreign_key="app_user.id")


class AutomationFiring(CRMTable, table=True):
    """The log of firings; the unique key is what makes `automations run` idempotent."""
    __tablename__ = "automation_firing"
    __table_args__ = (UniqueConstraint("rule_id", "entity", "record_id", "occasion", name="uq_firing"),)
    rule_id: int = Field(foreign_key="automation_rule.id", index=True)
    entity: str = Field(max_length=20)
    record_id: int
    occasion: str = Field(max_length=80)
    # When a time trigger's occasion began (an idle streak's start, a ticket's opening): what its look-up compares.
    occasion_at: datetime | None = None
    outcome: str = Field(default="ok", max_length=200)  # ok | failed
    detail: str | None = Field(default=None, max_length=500)  # what the action did, or why it failed


class Notification(CRMTable, table=True):
    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_user_read", "user_id", "read_at"),
        Index("ix_notification_record", "entity", "record_id"),  # what is about one record: merges, privacy requests
    )
    user_id: int = Field(foreign_key="app_user.id")
    message: str = Field(max_length=500)
    entity: str | None = Field(default=None, max_length=20)
    record_id: int | None = None
    read_at: datetime | None = None


class WebForm(CRMTable, SoftDelete, table=True):
    __tablename__ = "web_form"
    key: str = Field(max_length=60, unique=True)
    name: str = Field(max_length=120)
    token_hash: str = Field(max_length=200)
    mapping: dict = Field(default_factory=dict, sa_column=json_column())
    rate_limit_per_minute: int = 30
    active: bool = True


class ForecastSnapshot(CRMTable, table=True):
    __tablename__ = "forecast_snapshot"
    __table_args__ = (Index("ix_forecast_snapshot_day", "taken_on", "period_start"),)
    taken_on: date
    period_start: date
    period_end: date
    pipeline_id: int | None = Field(default=None, foreign_key="pipeline.id")
    user_id: int | None = Field(default=None, foreign_key="app_user.id")
    team_id: int | None = Field(default=None, foreign_key="team.id")
    data: dict = Field(default_factory=dict, sa_column=json_column())


class PredictionScore(CRMTable, table=True):
    """A model's score for a record (cross-sell per product, predictive lead score, ...)."""
    __tablename__ = "prediction_score"
    __table_args__ = (
        UniqueConstraint("model", "entity", "record_id", "product_id", name="uq_prediction"),
        Index("ix_prediction_model_product_p", "model", "product_id", "probability"),
        Index("ix_prediction_record", "entity", "record_id"),  # one record's scores: merges, privacy requests
    )
    model: str = Field(max_length=40)
    model_version: str = Field(max_length=40)
    entity: str = Field(max_length=20)
    record_id: int
    product_id: int | None = Field(default=None, foreign_key="product.id")
    probability: float
    scored_at: datetime = Field(default_factory=utcnow)


class LeadScoreRule(CRMTable, SoftDelete, table=True):
    __tablename__ = "lead_score_rule"
    name: str = Field(max_length=120)
    kind: str = Field(max_length=20)  # fit | engagement
    condition: dict = Field(default_factory=dict, sa_column=json_column())
    points: float = 0
    half_life_days: float | None = None
    active: bool = True
