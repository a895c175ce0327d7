"""Pipelines, stages, deals, their history, products, line items and quotas."""
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from crm.models.base import CRMTable, SoftDelete, check_in
from crm.models.vocab import DealStatus, ForecastCategory


class Pipeline(CRMTable, SoftDelete, table=True):
    __tablename__ = "pipeline"
    name: str = Field(max_length=120, unique=True)
    position: int = 0
    is_default: bool = False


class Stage(CRMTable, SoftDelete, table=True):
    __tablename__ = "stage"
    __table_args__ = (
        UniqueConstraint("pipeline_id", "name", name="uq_stage_name"),
        CheckConstraint("probability >= 0 AND probability <= 1", name="probability"),
        CheckConstraint("NOT (is_won AND is_lost)", name="won_lost"),
    )
    pipeline_id: int = Field(foreign_key="pipeline.id", index=True)
    name: str = Field(max_length=120)
    position: int = 0
    probability: float = 0.0
    is_won: bool = False
    is_lost: bool = False


class StageInput(SQLModel):
    name: str = Field(min_length=1, max_length=120)
    probability: float = Field(ge=0, le=1)
    is_won: bool = False
    is_lost: bool = False


class StageView(SQLModel):
    id: int
    pipeline_id: int
    name: str
    position: int
    probability: float
    is_won: bool
    is_lost: bool
    version: int


class PipelineView(SQLModel):
    id: int
    name: str
    position: int
    is_default: bool
    version: int
    stages: list[StageView] = []


class LostReason(CRMTable, SoftDelete, table=True):
    __tablename__ = "lost_reason"
    name: str = Field(max_length=120, unique=True)
    position: int = 0


class LostReasonView(SQLModel):
    id: int
    name: str
    position: int
    version: int
    deleted_at: datetime | None = None


class Deal(CRMTable, SoftDelete, table=True):
    __tablename__ = "deal"
    __table_args__ = (
        CheckConstraint(check_in("status", list(DealStatus)), name="status"),
        CheckConstraint(check_in("forecast_category", list(ForecastCategory)), name="forecast"),
        CheckConstraint("amount >= 0", name="amount"),
        # The board: one person's open deals of a pipeline, stage by stage, soonest close first.
        Index("ix_deal_owner_board", "owner_id", "status", "pipeline_id", "stage_id", "expected_close"),
        # Everyone's open deals of a pipeline (admins, forecasts): per stage, by close date, with the amount.
        Index("ix_deal_pipeline_stage", "pipeline_id", "stage_id", "status", "expected_close", "amount"),
        Index("ix_deal_status_close", "status", "expected_close"),
        # A company's past outcomes, without reading the rows (the win model's "company's past wins").
        Index("ix_deal_company_outcome", "company_id", "status", "closed_at", "deleted_at"),
        # The KPIs of deals closed (or created) in a period, read from the index alone: everyone's by date, a team's
        # or a rep's by owner and status (close rate, sales cycle, funnel, losses, win rates; cohort close rate).
        Index("ix_deal_closed_cover", "closed_at", "status", "owner_id", "pipeline_id", "created_at", "amount",
              "deleted_at", "lost_reason_id", "source"),
        Index("ix_deal_owner_closed", "owner_id", "status", "closed_at", "pipeline_id", "created_at", "amount",
              "deleted_at", "lost_reason_id", "source"),
        Index("ix_deal_created_cover", "created_at", "status", "owner_id", "pipeline_id", "deleted_at"),
    )
    title: str = Field(max_length=200)
    pipeline_id: int = Field(foreign_key="pipeline.id")
    stage_id: int = Field(foreign_key="stage.id", index=True)
    status: str = Field(default=DealStatus.OPEN, max_length=10)
    amount: float = 0.0
    currency: str = Field(default="USD", max_length=3)
    expected_close: date | None = Field(default=None, index=True)
    closed_at: datetime | None = Field(default=None, index=True)
    owner_id: int | None = Field(default=None, foreign_key="app_user.id")
    company_id: int | None = Field(default=None, foreign_key="company.id")
    contact_id: int | None = Field(default=None, foreign_key="contact.id", index=True)
    forecast_category: str = Field(default=ForecastCategory.PIPELINE, max_length=20)
    # Odoo's pattern: rep_probability is NULL until the rep overrides; the model keeps scoring beside it.
    rep_probability: float | None = Field(default=None, ge=0, le=1)
    model_probability: float | None = Field(default=None, ge=0, le=1)
    lost_reason_id: int | None = Field(default=None, foreign_key="lost_reason.id")
    source: str | None = Field(default=None, max_length=60)
    next_step: str | None = Field(default=None, max_length=300)
    stage_entered_at: datetime | None = None
    external_id: str | None = Field(default=None, max_length=100, index=True)


class DealContact(CRMTable, table=True):
    __tablename__ = "deal_contact"
    __table_args__ = (UniqueConstraint("deal_id", "contact_id", name="uq_deal_contact"),)
    deal_id: int = Field(foreign_key="deal.id", index=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    role: str | None = Field(default=None, max_length=60)


class DealStageHistory(CRMTable, table=True):
    """One row per stage a deal entered; exited_at is NULL for the current stage."""
    __tablename__ = "deal_stage_history"
    # A deal's stages in order, with what the KPIs' stage durations and funnel read (no row lookups).
    __table_args__ = (Index("ix_dsh_deal_entered", "deal_id", "entered_at", "stage_id", "exited_at"),)
    deal_id: int = Field(foreign_key="deal.id")
    stage_id: int = Field(foreign_key="stage.id", index=True)
    entered_at: datetime
    exited_at: datetime | None = None
    changed_by_id: int | None = Field(default=None, foreign_key="app_user.id")


class Product(CRMTable, SoftDelete, table=True):
    __tablename__ = "product"
    name: str = Field(max_length=120, unique=True)
    sku: str | None = Field(default=None, max_length=60, index=True)
    series: str | None = Field(default=None, max_length=60)
    list_price: float = Field(default=0.0, ge=0)
    active: bool = True


class DealLineItem(CRMTable, table=True):
    __tablename__ = "deal_line_item"
    # A deal's lines, and its products without reading the lines (win rate by product).
    __table_args__ = (Index("ix_deal_line_item_deal_product", "deal_id", "product_id"),)
    deal_id: int = Field(foreign_key="deal.id")
    product_id: int = Field(foreign_key="product.id", index=True)
    quantity: float = Field(default=1, gt=0)
    unit_price: float = Field(default=0.0, ge=0)
    discount: float = Field(default=0.0, ge=0, le=1)


class Quota(CRMTable, table=True):
    """A revenue target for one user or one team over a period (exactly one of the two is set)."""
    __tablename__ = "quota"
    __table_args__ = (
        CheckConstraint("(user_id IS NULL) <> (team_id IS NULL)", name="owner"),
        CheckConstraint("period_end >= period_start", name="period"),
        UniqueConstraint("user_id", "team_id", "period_start", "period_end", name="uq_quota"),
    )
    user_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    period_start: date
    period_end: date
    amount: float = Field(ge=0)


class StageStat(CRMTable, table=True):
    """How long closed deals spent in a stage: the stuck flag's threshold and the KPIs' stage durations.

    Derived from stage history by crm.stage_stats, which refreshes the rows when they are a day old or the number
    of closed deals has moved by more than 1 %."""
    __tablename__ = "stage_stat"
    __table_args__ = (UniqueConstraint("stage_id", "outcome", name="uq_stage_stat"),)
    stage_id: int = Field(foreign_key="stage.id")
    outcome: str = Field(max_length=10)  # won | lost
    deals: int  # stage visits measured
    median_days: float
    p75_days: float
    closed_deals: int  # deals closed with this outcome when computed (all stages): the staleness check
    computed_at: datetime
