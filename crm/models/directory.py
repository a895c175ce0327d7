"""Companies, contacts, tags and custom fields."""
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Column, Index, String, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from crm.models.base import CRMTable, SoftDelete, check_in, json_column
from crm.models.vocab import Entity, FieldType, Lifecycle, Role


class Company(CRMTable, SoftDelete, table=True):
    __tablename__ = "company"
    __table_args__ = (Index("ix_company_updated", "updated_at"),)
    name: str = Field(max_length=200, index=True)
    name_key: str = Field(default="", max_length=200, index=True)  # normalised for search
    domain: str | None = Field(default=None, max_length=253, index=True)
    industry: str | None = Field(default=None, max_length=100, index=True)
    employees: int | None = Field(default=None, ge=0)
    annual_revenue: float | None = Field(default=None, ge=0)
    country: str | None = Field(default=None, max_length=2, index=True)  # ISO 3166-1 alpha-2
    city: str | None = Field(default=None, max_length=120)
    parent_id: int | None = Field(default=None, foreign_key="company.id", index=True)  # a company's children
    owner_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    external_id: str | None = Field(default=None, max_length=100, index=True)


class CompanyInput(SQLModel):
    """What a person may type when creating or editing a company; validated by crm.companies."""
    name: str = ""
    domain: str | None = None
    industry: str | None = None
    employees: int | None = None
    annual_revenue: float | None = None
    country: str | None = None
    city: str | None = None
    parent_id: int | None = None
    owner_id: int | None = None
    external_id: str | None = None


class CompanyView(SQLModel):
    id: int
    name: str
    domain: str | None
    industry: str | None
    employees: int | None
    annual_revenue: float | None
    country: str | None
    city: str | None
    parent_id: int | None
    owner_id: int | None
    external_id: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class Contact(CRMTable, SoftDelete, table=True):
    __tablename__ = "contact"
    __table_args__ = (
        CheckConstraint(check_in("lifecycle_stage", list(Lifecycle)), name="lifecycle"),
        Index("ix_contact_owner_stage", "owner_id", "lifecycle_stage"),
        Index("ix_contact_updated", "updated_at"),
        # Covers the marketer's counts of live contacts by stage and consent without reading the wide rows.
        Index("ix_contact_live_marketing", "lifecycle_stage", "email_opt_in", "do_not_contact", "created_at",
              sqlite_where=text("deleted_at IS NULL"), postgresql_where=text("deleted_at IS NULL")),
        # The few deleted contacts: the KPIs check tens of thousands of facts against them at once, not one by one.
        Index("ix_contact_deleted", "id", sqlite_where=text("deleted_at IS NOT NULL"),
              postgresql_where=text("deleted_at IS NOT NULL")),
    )
    first_name: str = Field(default="", max_length=100)
    last_name: str = Field(default="", max_length=100)
    name_key: str = Field(default="", max_length=220, index=True)  # NFKC, case-folded, accent-free
    email: str | None = Field(default=None, max_length=254, index=True)
    phone: str | None = Field(default=None, max_length=20, index=True)  # E.164
    job_title: str | None = Field(default=None, max_length=150)
    company_id: int | None = Field(default=None, foreign_key="company.id", index=True)
    address: str | None = Field(default=None, max_length=300)
    city: str | None = Field(default=None, max_length=120)
    country: str | None = Field(default=None, max_length=2, index=True)
    lifecycle_stage: str = Field(default=Lifecycle.LEAD, max_length=20, index=True)
    source: str | None = Field(default=None, max_length=60, index=True)
    owner_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    lead_score: float | None = Field(default=None, index=True)
    social_profiles: dict = Field(default_factory=dict, sa_column=json_column())
    interests: list = Field(default_factory=list, sa_column=json_column())
    email_opt_in: bool = Field(default=False)
    do_not_contact: bool = Field(default=False)
    last_engaged_at: datetime | None = Field(default=None, index=True)
    external_id: str | None = Field(default=None, max_length=100, index=True)


class ContactView(SQLModel):
    id: int
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    job_title: str | None
    company_id: int | None
    address: str | None
    city: str | None
    country: str | None
    lifecycle_stage: Lifecycle
    source: str | None
    owner_id: int | None
    lead_score: float | None
    social_profiles: dict
    interests: list
    email_opt_in: bool
    do_not_contact: bool
    last_engaged_at: datetime | None
    external_id: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Tag(CRMTable, SoftDelete, table=True):
    __tablename__ = "tag"
    name: str = Field(max_length=60, unique=True)
    color: str | None = Field(default=None, max_length=7)


class ContactTag(CRMTable, table=True):
    __tablename__ = "contact_tag"
    __table_args__ = (UniqueConstraint("contact_id", "tag_id", name="uq_contact_tag"),)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    tag_id: int = Field(foreign_key="tag.id", index=True)


class CompanyTag(CRMTable, table=True):
    __tablename__ = "company_tag"
    __table_args__ = (UniqueConstraint("company_id", "tag_id", name="uq_company_tag"),)
    company_id: int = Field(foreign_key="company.id", index=True)
    tag_id: int = Field(foreign_key="tag.id", index=True)


class CustomFieldDefBase(SQLModel):
    entity: Entity
    key: str = Field(min_length=1, max_length=60, regex=r"^[a-z][a-z0-9_]*$")
    label: str = Field(min_length=1, max_length=120)
    field_type: FieldType
    required: bool = False
    regex: str | None = Field(default=None, max_length=300)
    min_value: float | None = None
    max_value: float | None = None
    options: list[str] = Field(default_factory=list)
    view_roles: list[Role] = Field(default_factory=lambda: list(Role))
    edit_roles: list[Role] = Field(default_factory=lambda: [Role.ADMIN, Role.MANAGER, Role.REP])
    position: int = 0


class CustomFieldDef(CRMTable, SoftDelete, table=True):
    __tablename__ = "custom_field_def"
    __table_args__ = (
        UniqueConstraint("entity", "key", name="uq_custom_field_key"),
        CheckConstraint(check_in("entity", list(Entity)), name="entity"),
        CheckConstraint(check_in("field_type", list(FieldType)), name="type"),
    )
    entity: str = Field(max_length=20)
    key: str = Field(max_length=60)
    label: str = Field(max_length=120)
    field_type: str = Field(max_length=20)
    required: bool = False
    regex: str | None = Field(default=None, max_length=300)
    min_value: float | None = None
    max_value: float | None = None
    options: list = Field(default_factory=list, sa_column=json_column())
    view_roles: list = Field(default_factory=list, sa_column=json_column())
    edit_roles: list = Field(default_factory=list, sa_column=json_column())
    position: int = 0


class CustomFieldDefView(CustomFieldDefBase):
    id: int
    version: int


class CustomFieldValue(CRMTable, table=True):
    """One typed value per (field, record): exactly one value_* column is set, so SQL can filter on it."""
    __tablename__ = "custom_field_value"
    __table_args__ = (
        UniqueConstraint("field_id", "record_id", name="uq_custom_field_value"),
        Index("ix_cfv_text", "field_id", "value_text"),
        Index("ix_cfv_number", "field_id", "value_number"),
        Index("ix_cfv_date", "field_id", "value_date"),
    )
    field_id: int = Field(foreign_key="custom_field_def.id")
    record_id: int = Field(index=True)
    value_text: str | None = Field(default=None, max_length=2000)
    value_number: float | None = None
    value_bool: bool | None = None
    value_date: date | None = None


class ContactInput(SQLModel):
    """What a person may type when creating or editing a contact; validated by crm.contacts."""
    first_name: str = ""
    last_name: str = ""
    email: str | None = None
    phone: str | None = None
    job_title: str | None = None
    company_id: int | None = None
    address: str | None = None
    city: str | None = None
    country: str | None = None
    lifecycle_stage: Lifecycle = Lifecycle.LEAD
    source: str | None = None
    owner_id: int | None = None
    lead_score: float | None = None
    social_profiles: dict[str, str] = Field(default_factory=dict)
    interests: list[str] = Field(default_factory=list)
    email_opt_in: bool = False
    do_not_contact: bool = False
    external_id: str | None = None


class SearchToken(SQLModel, table=True):
    """Normalised words of a contact or company, for indexed prefix search; derived data, kept by crm.search.

    The key (entity, token, record_id) is the index a prefix search walks. Byte order ("C" collation on
    PostgreSQL, BINARY on SQLite) makes `token >= 'ab' AND token < 'ac'` a range over that index in any script.
    """
    __tablename__ = "search_token"
    __table_args__ = (Index("ix_search_token_record", "entity", "record_id"),)
    entity: str = Field(primary_key=True, max_length=10)
    token: str = Field(sa_column=Column(String(120).with_variant(String(120, collation="C"), "postgresql"),
                                        primary_key=True))
    record_id: int = Field(primary_key=True)
