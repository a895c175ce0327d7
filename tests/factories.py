"""Small factories with memorable names, for domain tests."""
from itertools import count

from sqlmodel import Session, select

from crm.db import read_scope, session_scope
from crm.models import Contact, Stage, Team, User, UserCreate
from crm.permissions import Actor, load_actor
from crm.users import create_user, save_team

_n = count(1)
PASSWORD = "correct horse battery staple"


def make_team(engine, name: str) -> int:
    with session_scope(engine) as s:
        existing = s.exec(select(Team).where(Team.name == name)).first()
        return existing.id if existing else save_team(session=s, actor=_system_admin(s), name=name).id


def _system_admin(session: Session) -> Actor:
    admin = session.exec(select(User).where(User.role == "admin", User.active)).first()
    if admin is None:
        view = create_user(session=session, actor=None, data=UserCreate(
            email="root@example.com", full_name="Root Admin", role="admin", password=PASSWORD))
        return load_actor(session, view.id)
    return load_actor(session, admin.id)


def make_user(engine, role: str = "rep", *, team: str | None = None, name: str | None = None,
              password: str | None = PASSWORD) -> int:
    team_id = make_team(engine, team) if team else None
    with session_scope(engine) as s:
        n = next(_n)
        view = create_user(session=s, actor=_system_admin(s) if role != "admin" else None, data=UserCreate(
            email=f"{role}{n}@example.com", full_name=name or f"{role.title()} {n}", role=role, team_id=team_id,
            password=password))
        return view.id


def actor(engine, user_id: int) -> Actor:
    with read_scope(engine) as s:  # a read: safe to call while a test holds a write scope
        return load_actor(s, user_id)


def stage_named(session: Session, name: str, pipeline: str = "New business") -> Stage:
    from crm.models import Pipeline

    return session.exec(select(Stage).join(Pipeline).where(Stage.name == name, Pipeline.name == pipeline)).one()


def contact_count(engine) -> int:
    with session_scope(engine) as s:
        return len(s.exec(select(Contact.id)).all())


def new_sqlite_crm(path):
    """An empty file-backed SQLite CRM with reference data seeded (file, so WAL and locking are real)."""
    from crm.db import make_engine
    from crm.schema import create_all_for_tests, seed_reference_data

    engine = make_engine(f"sqlite:///{path}")
    create_all_for_tests(engine)
    with session_scope(engine) as session:
        seed_reference_data(session)
    return engine
