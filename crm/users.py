"""Users and teams: the admin's use cases. Every change is permission-checked, versioned and audited."""
from sqlalchemy import func
from sqlmodel import Session, select

from crm.audit import apply_changes, audit, check_version, created_fields, load_for_update
from crm.auth import find_user_by_email
from crm.clock import utcnow
from crm.errors import NotFound, ValidationFailed
from crm.models import Role, Team, TeamView, User, UserCreate, UserUpdate, UserView
from crm.permissions import Actor, readable_owner_ids, require
from crm.rows import unique_name
from crm.security import MIN_PASSWORD_LENGTH, hash_password
from crm.validation import normalize_email, require_text


def _view(user: User, team_name: str | None = None) -> UserView:
    locked = bool(user.locked_until and user.locked_until > utcnow())
    return UserView(**user.model_dump(exclude={"role"}), role=Role(user.role), team_name=team_name, locked=locked)


def _check_team(session: Session, team_id: int | None) -> None:
    if team_id is not None and session.get(Team, team_id) is None:
        raise ValidationFailed("team_id", f"team {team_id} does not exist")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")


def list_users(*, session: Session, actor: Actor, include_inactive: bool = True) -> list[UserView]:
    require(actor, "users.manage", "manage users")
    stmt = select(User, Team.name).join(Team, Team.id == User.team_id, isouter=True).order_by(User.full_name)
    if not include_inactive:
        stmt = stmt.where(User.active)
    return [_view(u, t) for u, t in session.exec(stmt).all()]


def create_user(*, session: Session, actor: Actor | None, data: UserCreate) -> UserView:
    """Add a user. actor=None is the operator at the command line, who has the database itself anyway."""
    if actor is not None:
        require(actor, "users.manage", "add users")
    email = normalize_email(data.email)
    if find_user_by_email(session, email):
        raise ValidationFailed("email", f"{email} already has an account")
    _check_team(session, data.team_id)
    if data.password is not None:
        _check_password(data.password)
    user = User(email=email, full_name=require_text(data.full_name, field="full_name", max_length=200),
                role=data.role, team_id=data.team_id, active=data.active,
                password_hash=hash_password(data.password) if data.password else None)
    session.add(user)
    session.flush()
    changes = created_fields(user)
    changes.pop("password_hash", None)  # the audit log never holds secrets
    audit(session, actor_id=actor.id if actor else None, entity="user", record_id=user.id, action="create",
          changes=changes, record_version=user.version, context=None if actor else "cli")
    return _view(user)


def update_user(*, session: Session, actor: Actor, user_id: int, changes: UserUpdate, seen_version: int) -> UserView:
    require(actor, "users.manage", "edit users")
    user = load_for_update(session, User, user_id, label="User")
    check_version(session, entity="user", record=user, seen_version=seen_version)
    values = changes.model_dump(exclude_unset=True)
    if "full_name" in values:
        values["full_name"] = require_text(values["full_name"], field="full_name", max_length=200)
    _check_team(session, values.get("team_id"))
    if user.id == actor.id and (values.get("active") is False or values.get("role", Role.ADMIN) != Role.ADMIN):
        raise ValidationFailed("role", "you cannot demote or deactivate yourself; ask another admin")
    diff = apply_changes(user, values)
    if diff:
        audit(session, actor_id=actor.id, entity="user", record_id=user.id, action="update", changes=diff,
              record_version=user.version)
    return _view(user)


def set_password(*, session: Session, actor: Actor | None, user_id: int, password: str) -> None:
    """Admins set anyone's password, users their own; actor=None is the CLI acting as the operator."""
    if actor is not None and actor.id != user_id:
        require(actor, "users.manage", "set other users' passwords")
    _check_password(password)
    user = load_for_update(session, User, user_id, label="User")
    user.password_hash = hash_password(password)
    user.failed_logins, user.locked_until = 0, None
    user.version += 1
    audit(session, actor_id=actor.id if actor else None, entity="user", record_id=user.id, action="update",
          changes={"password": ("***", "***")}, record_version=user.version)


def list_teams(*, session: Session, actor: Actor) -> list[TeamView]:
    counts = select(User.team_id, func.count().label("n")).group_by(User.team_id).subquery()
    rows = session.exec(select(Team, counts.c.n).join(counts, counts.c.team_id == Team.id, isouter=True)
                        .order_by(Team.name)).all()
    return [TeamView(id=t.id, name=t.name, version=t.version, member_count=n or 0) for t, n in rows]


def save_team(*, session: Session, actor: Actor, name: str, team_id: int | None = None,
              seen_version: int | None = None) -> TeamView:
    """Create a team (team_id None) or rename one."""
    require(actor, "users.manage", "manage teams")
    name = unique_name(session, Team, name, what="a team", record_id=team_id)
    if team_id is None:
        team = Team(name=name)
        session.add(team)
        session.flush()
        audit(session, actor_id=actor.id, entity="team", record_id=team.id, action="create",
              changes={"name": (None, name)}, record_version=team.version)
        return TeamView(id=team.id, name=team.name, version=team.version)
    team = load_for_update(session, Team, team_id, label="Team")
    check_version(session, entity="team", record=team, seen_version=seen_version)
    diff = apply_changes(team, {"name": name})
    if diff:
        audit(session, actor_id=actor.id, entity="team", record_id=team.id, action="update", changes=diff,
              record_version=team.version)
    return TeamView(id=team.id, name=team.name, version=team.version)


def get_user(*, session: Session, user_id: int) -> UserView:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} does not exist")
    return _view(user, session.get(Team, user.team_id).name if user.team_id else None)


def first_active_user_of_role(*, session: Session, role: Role) -> int | None:
    """The longest-standing active user with this role (the benchmark signs in as them)."""
    return session.exec(select(User.id).where(User.role == role, User.active).order_by(User.id)).first()


def owner_choices(*, session: Session, actor: Actor, area: str = "contacts") -> list[tuple[int, str]]:
    """(id, name) of the active users this actor may hand records of `area` to: everyone for "all" rights,
    their team for "team" rights, themselves otherwise. For owner pickers and filters."""
    stmt = select(User.id, User.full_name).where(User.active, User.role != Role.MARKETER)
    if not actor.can(f"{area}.edit_all"):
        if actor.can(f"{area}.edit_team") and actor.team_id is not None:
            stmt = stmt.where(User.team_id == actor.team_id)
        else:
            stmt = stmt.where(User.id == actor.id)
    return [(i, n) for i, n in session.exec(stmt.order_by(User.full_name)).all()]


def reader_choices(*, session: Session, actor: Actor, area: str = "contacts") -> list[tuple[int, str]]:
    """(id, name) of the users whose records of `area` this actor may read: the owner filter's options."""
    stmt = select(User.id, User.full_name)
    readable = readable_owner_ids(session, actor, area)
    if readable is not None:
        stmt = stmt.where(User.id.in_(readable))
    return [(i, n) for i, n in session.exec(stmt.order_by(User.full_name)).all()]
