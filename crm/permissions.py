"""Who may do what. Role rights are rows (role_right); record rules decide own / team / all."""
from dataclasses import dataclass

from sqlmodel import Session, select

from crm.errors import AuthenticationFailed, PermissionDenied
from crm.models import Role, RoleRight, User


@dataclass(frozen=True)
class Actor:
    """The signed-in user as the domain sees them: re-read from the database on every request."""
    id: int
    email: str
    full_name: str
    role: Role
    team_id: int | None
    rights: frozenset[str]

    def can(self, right: str) -> bool:
        return right in self.rights


def load_actor(session: Session, user_id: int | None) -> Actor:
    """Re-check the user behind a session: they must still exist and be active."""
    user = session.get(User, user_id) if user_id else None
    if user is None or not user.active:
        raise AuthenticationFailed("Your account is not active any more. Please sign in again.")
    rights = session.exec(select(RoleRight.name).where(RoleRight.role == user.role)).all()
    return Actor(id=user.id, email=user.email, full_name=user.full_name, role=Role(user.role),
                 team_id=user.team_id, rights=frozenset(rights))


def require(actor: Actor, right: str, doing: str) -> None:
    if not actor.can(right):
        raise PermissionDenied(f"Your role ({actor.role}) may not {doing}.")


def _scope(actor: Actor, area: str, verb: str, owner_id: int | None, owner_team_id: int | None) -> bool:
    if actor.can(f"{area}.{verb}_all"):
        return True
    if actor.can(f"{area}.{verb}_team") and actor.team_id is not None and owner_team_id == actor.team_id:
        return True
    own = actor.can(f"{area}.{verb}_own") or (verb == "read" and actor.can(f"{area}.edit_own"))
    return own and owner_id == actor.id


def owner_team(session: Session, owner_id: int | None) -> int | None:
    if owner_id is None:
        return None
    owner = session.get(User, owner_id)
    return owner.team_id if owner else None


def can_read(session: Session, actor: Actor, area: str, owner_id: int | None) -> bool:
    """area is 'contacts' or 'deals' (companies follow contacts)."""
    return _scope(actor, area, "read", owner_id, owner_team(session, owner_id))


def can_edit(session: Session, actor: Actor, area: str, owner_id: int | None) -> bool:
    return _scope(actor, area, "edit", owner_id, owner_team(session, owner_id))


def require_edit(session: Session, actor: Actor, area: str, owner_id: int | None, what: str) -> None:
    if not can_edit(session, actor, area, owner_id):
        raise PermissionDenied(f"You may not edit {what}: it belongs to someone outside what your role ({actor.role}) may edit.")


def require_read(session: Session, actor: Actor, area: str, owner_id: int | None, what: str) -> None:
    if not can_read(session, actor, area, owner_id):
        raise PermissionDenied(f"You may not see {what}.")


def readable_owner_ids(session: Session, actor: Actor, area: str) -> list[int] | None:
    """Owner ids whose records the actor may read, or None for 'all' (used to filter list queries)."""
    if actor.can(f"{area}.read_all"):
        return None
    if actor.can(f"{area}.read_team") and actor.team_id is not None:
        return list(session.exec(select(User.id).where(User.team_id == actor.team_id)).all())
    return [actor.id]
