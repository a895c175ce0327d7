"""Create or upgrade the schema (Alembic), and seed the reference rows an empty CRM needs."""
import json
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect
from sqlmodel import Session, select

from crm.config import ROOT
from crm.kpis import cube
from crm.models import LostReason, Pipeline, RoleRight, Stage, metadata

REFERENCE = ROOT / "data" / "reference"


def alembic_config() -> Config:
    return Config(str(ROOT / "alembic.ini"))


def upgrade_schema(engine: Engine) -> None:
    """Bring the database to the newest migration (creates it from nothing if empty)."""
    config = alembic_config()
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        conn.commit()


def create_all_for_tests(engine: Engine) -> None:
    """Tests only: build the schema straight from the models, skipping migrations."""
    metadata.create_all(engine)


def has_schema(engine: Engine) -> bool:
    return inspect(engine).has_table("app_user")


def _load(name: str) -> dict:
    return json.loads((REFERENCE / name).read_text(encoding="utf-8"))


def seed_reference_data(session: Session) -> bool:
    """Insert default role rights, pipelines and lost reasons where none exist. Returns True if it seeded."""
    seeded = False
    if session.exec(select(RoleRight).limit(1)).first() is None:
        for role, names in _load("role_rights.json").items():
            if not role.startswith("_"):
                session.add_all(RoleRight(role=role, name=n) for n in names)
        seeded = True
    reference = _load("pipelines.json")
    if session.exec(select(Pipeline).limit(1)).first() is None:
        for position, spec in enumerate(reference["pipelines"]):
            pipeline = Pipeline(name=spec["name"], position=position, is_default=spec["is_default"])
            session.add(pipeline)
            session.flush()
            session.add_all(
                Stage(pipeline_id=pipeline.id, position=i, name=s["name"], probability=s["probability"],
                      is_won=s.get("is_won", False), is_lost=s.get("is_lost", False))
                for i, s in enumerate(spec["stages"])
            )
        seeded = True
    if session.exec(select(LostReason).limit(1)).first() is None:
        session.add_all(LostReason(name=n, position=i) for i, n in enumerate(reference["lost_reasons"]))
        seeded = True
    if not cube.ready(session):  # a new database, or one upgraded from before the KPI cube: build it once
        cube.rebuild(session)
    session.flush()
    return seeded


def reference_path(name: str) -> Path:
    return REFERENCE / name
