"""SQLModel tables, split by part of the domain. Import from here: `from crm.models import Contact`."""
from sqlmodel import SQLModel

from crm.models.bookkeeping import (
    AuditLog, AutomationFiring, AutomationRule, DataVersion, ForecastSnapshot, ImportChange, ImportJob,
    LeadScoreRule, MergeLog, Notification, PredictionScore, SavedMapping, Segment, SegmentMember,
    SegmentSnapshot, SegmentSnapshotMember, WebForm,
)
from crm.models.directory import (
    Company, CompanyInput, CompanyTag, CompanyView, Contact, ContactInput, ContactTag, ContactView, CustomFieldDef, CustomFieldDefBase,
    CustomFieldDefView, CustomFieldValue, SearchToken, Tag,
)
from crm.models.duplicates import DuplicateCandidate, DuplicatePairView, PairStatus
from crm.models.engagement import (
    Activity, BehaviorEvent, ListSubscriptionEvent, MarketingSpend, Order, OrderLine, SurveyResponse, Ticket,
)
from crm.models.hygiene import HygieneChange, HygieneJob
from crm.models.kpi import KpiCube
from crm.models.people import RoleRight, Team, TeamView, User, UserCreate, UserUpdate, UserView
from crm.models.pipeline import (
    Deal, DealContact, DealLineItem, DealStageHistory, LostReason, LostReasonView, Pipeline, PipelineView,
    Product, Quota, Stage, StageInput, StageStat, StageView,
)
from crm.models.vocab import (
    ActivityKind, DealStatus, Entity, EventKind, FieldType, ForecastCategory, Lifecycle, Role, SubscriptionAction,
    SurveyKind, TicketStatus,
)

metadata = SQLModel.metadata

__all__ = [name for name in dir() if not name.startswith("_")]
