"""What happens around contacts: activities, tracked behaviour, orders, tickets, surveys, marketing."""
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Index, UniqueConstraint
from sqlmodel import Field

from crm.models.base import CRMTable, SoftDelete, check_in, json_column
from crm.models.vocab import ActivityKind, EventKind, SubscriptionAction, SurveyKind, TicketStatus


class Activity(CRMTable, SoftDelete, table=True):
    __tablename__ = "activity"
    __table_args__ = (
        CheckConstraint(check_in("kind", list(ActivityKind)), name="kind"),
        Index("ix_activity_contact_when", "contact_id", "occurred_at"),
        Index("ix_activity_assignee_open", "assignee_id", "done_at", "due_at"),
        # A deal's activities by kind and time, without reading the rows (win-model features for 100k deals).
        Index("ix_activity_deal_kind_when", "deal_id", "kind", "occurred_at", "done_at", "deleted_at"),
    )
    kind: str = Field(max_length=10)
    subject: str = Field(max_length=200)
    body: str | None = Field(default=None, max_length=10_000)
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    company_id: int | None = Field(default=None, foreign_key="company.id", index=True)
    deal_id: int | None = Field(default=None, foreign_key="deal.id")
    owner_id: int | None = Field(default=None, foreign_key="app_user.id")  # who logged it
    assignee_id: int | None = Field(default=None, foreign_key="app_user.id")
    occurred_at: datetime | None = None  # when a call/meeting happened
    due_at: datetime | None = None  # for tasks
    done_at: datetime | None = None
    snoozed_until: datetime | None = None
    external_id: str | None = Field(default=None, max_length=100, index=True)


class BehaviorEvent(CRMTable, table=True):
    """Tracked behaviour (web visit, email open/click, form, offer viewed): append-only facts."""
    __tablename__ = "behavior_event"
    __table_args__ = (
        CheckConstraint(check_in("kind", list(EventKind)), name="kind"),
        Index("ix_event_contact_kind_when", "contact_id", "kind", "occurred_at"),
        # Who did something of a kind since a moment, from the index alone (segments: "no web visit in 60 days").
        Index("ix_event_kind_when_contact", "kind", "occurred_at", "contact_id"),
    )
    contact_id: int = Field(foreign_key="contact.id")
    kind: str = Field(max_length=20)
    occurred_at: datetime
    url: str | None = Field(default=None, max_length=500)
    offer: str | None = Field(default=None, max_length=120, index=True)
    campaign: str | None = Field(default=None, max_length=120)
    properties: dict = Field(default_factory=dict, sa_column=json_column())


class Order(CRMTable, SoftDelete, table=True):
    __tablename__ = "sales_order"
    # A contact's orders by date, also covering the segment tests on them (count, total, last order) so that
    # a million orders are counted from the index, not the rows.
    __table_args__ = (Index("ix_order_contact_cover", "contact_id", "ordered_at", "status", "deleted_at", "total"),)
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    company_id: int | None = Field(default=None, foreign_key="company.id", index=True)
    deal_id: int | None = Field(default=None, foreign_key="deal.id", index=True)
    ordered_at: datetime | None = Field(default=None, index=True)  # NULL for undated migrated history
    status: str = Field(default="completed", max_length=20)
    total: float = Field(default=0.0)
    currency: str = Field(default="USD", max_length=3)
    external_id: str | None = Field(default=None, max_length=100, index=True)


class OrderLine(CRMTable, table=True):
    __tablename__ = "order_line"
    __table_args__ = (Index("ix_order_line_product_order", "product_id", "order_id"),)  # who owns a product
    order_id: int = Field(foreign_key="sales_order.id", index=True)
    product_id: int = Field(foreign_key="product.id")
    quantity: float = Field(default=1, gt=0)
    unit_price: float = Field(default=0.0, ge=0)


class Ticket(CRMTable, SoftDelete, table=True):
    __tablename__ = "ticket"
    __table_args__ = (
        CheckConstraint(check_in("status", list(TicketStatus)), name="status"),
        # The tickets resolved in a period, with what the time to resolve reads (no row lookups).
        Index("ix_ticket_status_resolved", "status", "resolved_at", "opened_at", "deleted_at", "contact_id",
              "owner_id"),
    )
    contact_id: int | None = Field(default=None, foreign_key="contact.id", index=True)
    company_id: int | None = Field(default=None, foreign_key="company.id", index=True)
    owner_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    subject: str = Field(max_length=200)
    channel: str = Field(default="email", max_length=20)
    status: str = Field(default=TicketStatus.OPEN, max_length=10, index=True)
    priority: str = Field(default="normal", max_length=10)
    opened_at: datetime = Field(index=True)
    resolved_at: datetime | None = Field(default=None, index=True)
    external_id: str | None = Field(default=None, max_length=100, index=True)


class SurveyResponse(CRMTable, table=True):
    __tablename__ = "survey_response"
    __table_args__ = (
        CheckConstraint(check_in("kind", list(SurveyKind)), name="kind"),
        CheckConstraint("(kind = 'nps' AND score BETWEEN 0 AND 10) OR (kind = 'csat' AND score BETWEEN 1 AND 5)",
                        name="score"),
        # A period's answers of a kind, with what NPS reads (no row lookups).
        Index("ix_survey_kind_when", "kind", "answered_at", "contact_id", "score"),
    )
    contact_id: int = Field(foreign_key="contact.id", index=True)
    kind: str = Field(max_length=10)
    score: int
    comment: str | None = Field(default=None, max_length=2000)
    answered_at: datetime


class MarketingSpend(CRMTable, table=True):
    __tablename__ = "marketing_spend"
    __table_args__ = (UniqueConstraint("channel", "month", name="uq_spend_channel_month"),)
    channel: str = Field(max_length=60)
    month: date  # first day of the month
    amount: float = Field(ge=0)


class ListSubscriptionEvent(CRMTable, table=True):
    __tablename__ = "list_subscription_event"
    __table_args__ = (
        CheckConstraint(check_in("action", list(SubscriptionAction)), name="action"),
        Index("ix_subscription_list_when", "list_name", "occurred_at"),
    )
    contact_id: int = Field(foreign_key="contact.id", index=True)
    list_name: str = Field(max_length=120)
    action: str = Field(max_length=12)
    occurred_at: datetime
