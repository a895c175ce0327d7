"""Users, teams, and the rights each role holds (rows, so an admin can change them)."""
from datetime import datetime

from pydantic import EmailStr
from sqlalchemy import CheckConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from crm.models.base import CRMTable, check_in
from crm.models.vocab import Role


class Team(CRMTable, table=True):
    __tablename__ = "team"
    name: str = Field(max_length=120, unique=True)


class TeamView(SQLModel):
    id: int
    name: str
    version: int
    member_count: int = 0


class UserBase(SQLModel):
    email: EmailStr = Field(max_length=254)
    full_name: str = Field(min_length=1, max_length=200)
    role: Role
    team_id: int | None = None
    active: bool = True


class User(CRMTable, table=True):
    __tablename__ = "app_user"
    __table_args__ = (CheckConstraint(check_in("role", list(Role)), name="role"),)
    email: str = Field(max_length=254, unique=True, index=True)
    full_name: str = Field(max_length=200)
    role: str = Field(max_length=20, index=True)
    team_id: int | None = Field(default=None, foreign_key="team.id", index=True)
    active: bool = Field(default=True)
    password_hash: str | None = Field(default=None, max_length=200)
    failed_logins: int = Field(default=0)
    locked_until: datetime | None = None
    last_login_at: datetime | None = None


class UserCreate(UserBase):
    password: str | None = Field(default=None, min_length=12, max_length=1024)


class UserUpdate(SQLModel):
    full_name: str | None = Field(default=None, min_length=1, max_length=200)
    role: Role | None = None
    team_id: int | None = None
    active: bool | None = None


class UserView(SQLModel):
    id: int
    email: str
    full_name: str
    role: Role
    team_id: int | None
    team_name: str | None = None
    active: bool
    version: int
    last_login_at: datetime | None = None
    locked: bool = False


class RoleRight(CRMTable, table=True):
    __tablename__ = "role_right"
    __table_args__ = (
        UniqueConstraint("role", "name", name="uq_role_right"),
        CheckConstraint(check_in("role", list(Role)), name="role"),
    )
    role: str = Field(max_length=20, index=True)
    name: str = Field(max_length=60)
