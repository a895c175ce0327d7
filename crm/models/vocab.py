"""Fixed vocabularies. Stored as plain strings, constrained by CHECKs in the schema."""
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    REP = "rep"
    MARKETER = "marketer"


class Lifecycle(StrEnum):
    SUBSCRIBER = "subscriber"
    LEAD = "lead"
    MQL = "mql"
    SQL = "sql"
    OPPORTUNITY = "opportunity"
    CUSTOMER = "customer"
    CHURNED = "churned"


class FieldType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    CHECKBOX = "checkbox"
    DROPDOWN = "dropdown"
    DATE = "date"


class Entity(StrEnum):
    """Record kinds that carry custom fields, tags, audit rows and segments."""
    CONTACT = "contact"
    COMPANY = "company"
    DEAL = "deal"


class DealStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class ForecastCategory(StrEnum):
    PIPELINE = "pipeline"
    BEST_CASE = "best_case"
    COMMIT = "commit"
    OMITTED = "omitted"
    CLOSED = "closed"


class ActivityKind(StrEnum):
    CALL = "call"
    EMAIL = "email"
    MEETING = "meeting"
    NOTE = "note"
    TASK = "task"


class EventKind(StrEnum):
    WEB_VISIT = "web_visit"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    FORM_SUBMISSION = "form_submission"
    OFFER_VIEWED = "offer_viewed"


class SurveyKind(StrEnum):
    NPS = "nps"
    CSAT = "csat"


class TicketStatus(StrEnum):
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"


class SubscriptionAction(StrEnum):
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
