"""Users and teams (needs users.manage): upserted by email. Imported users have no password, so they cannot sign
in until an admin sets one. Options: email_domain (derive missing emails from names), create_teams, create_managers,
default_role."""
import re
import unicodedata
from typing import Any

from crm.errors import PermissionDenied, ValidationFailed
from crm.imports.context import Context, Row
from crm.imports.entities.base import Importer, merged
from crm.imports.lookups import Deferred
from crm.imports.values import fold
from crm.imports.writing import Writer
from crm.models import Role, Team, User
from crm.validation import normalize_email

_FIELDS = ("email", "full_name", "role", "team_id", "active")


def email_from_name(name: str, domain: str) -> str | None:
    """'Mei-Mei Johns' + 'maven.example' -> 'mei-mei.johns@maven.example'; None for names without Latin letters."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    local = re.sub(r"\.+", ".", re.sub(r"[^a-z0-9-]+", ".", ascii_name)).strip(".-")
    return f"{local}@{domain}" if local else None


class UserImporter(Importer):
    entity, record, model = "users", "user", User
    required = ("full_name",)
    self_reference = "user"
    skip_audit = frozenset()

    def prepare(self, ctx: Context, writer: Writer) -> None:
        if ctx.actor is not None and not ctx.actor.can("users.manage"):
            raise PermissionDenied(f"Your role ({ctx.actor.role}) may not import users and teams.")
        self.domain = ctx.option("email_domain")
        if self.domain:
            normalize_email(f"a@{self.domain}", field="options.email_domain")

    def pending_keys(self, ctx: Context, row: Row) -> list[str]:
        return [fold(row.cells[s]) for s in map(ctx.mapping.source_of, ("full_name", "email"))
                if s and row.cells.get(s)]

    def _email(self, row: Row) -> str:
        if email := row.values.get("email"):
            return normalize_email(email, row=row.number)
        derived = email_from_name(row.values.get("full_name") or "", self.domain) if self.domain else None
        if derived is None:
            raise ValidationFailed("email", "is required (or set options.email_domain in the mapping to make one "
                                            "from the name)" if not self.domain else
                                   "cannot be made from this name; give an email")
        return normalize_email(derived, row=row.number)

    def keys(self, ctx: Context, row: Row) -> list[tuple[str, str]]:
        row.values["email"] = self._email(row)
        return [("email", row.values["email"])]

    def match(self, ctx: Context, wanted: dict[str, set[str]]) -> dict[tuple[str, str], int]:
        return {("email", e): next(iter(ids)) for e in wanted.get("email", ())
                if (ids := ctx.lookups.users.find("email", e))}

    def build(self, ctx: Context, row: Row) -> dict[str, Any]:
        values = merged(row, _FIELDS)
        if "team" in row.values:
            values["team_id"] = self._team(ctx, row.values["team"])
        if values["role"] is None:
            values["role"] = str(Role(ctx.option("default_role", "rep")))
        values["role"] = str(values["role"])
        if values["active"] is None:
            values["active"] = True
        if not values["full_name"]:
            raise ValidationFailed("full_name", "is required")
        if ctx.actor is not None and row.existing and row.existing["id"] == ctx.actor.id and (
                values["role"] != row.existing["role"] or not values["active"]):
            raise ValidationFailed("role", "you cannot demote or deactivate yourself; ask another admin")
        if manager := row.values.get("manager"):
            self._manager(ctx, manager, values["team_id"])
        return values

    def _team(self, ctx: Context, name: str) -> int:
        try:
            return ctx.lookups.team(name)
        except Deferred:
            raise
        except ValueError as exc:
            if not ctx.option("create_teams"):
                raise ValidationFailed("team", f"{exc}; set options.create_teams to create it") from None
        clean = " ".join(name.split())
        if len(clean) > 120:
            raise ValidationFailed("team", "is longer than 120 characters")
        [team_id] = ctx.writer.insert(Team, [{"name": clean}], entity="team")
        ctx.lookups.teams.add(team_id, clean, name=clean)
        ctx.also_created["team"] += 1
        return team_id

    def _manager(self, ctx: Context, text: str, team_id: int | None) -> None:
        """The manager column names a manager of the same team; with create_managers, a missing one is created."""
        try:
            manager = ctx.lookups.user(text, active=False)
        except Deferred:
            if not ctx.option("create_managers"):
                raise
            manager = None
        except ValueError as exc:
            if not ctx.option("create_managers"):
                raise ValidationFailed("manager", f"{exc}; set options.create_managers to create it") from None
            manager = None
        if manager is None:
            self._create_manager(ctx, text, team_id)
        elif ctx.lookups.user_team.get(manager) != team_id:
            team = ctx.lookups.teams.names.get(ctx.lookups.user_team.get(manager), "no team")
            raise ValidationFailed("manager", f"{text!r} manages the team {team!r}, not this row's team")

    def _create_manager(self, ctx: Context, name: str, team_id: int | None) -> None:
        email = email_from_name(name, self.domain) if self.domain and "@" not in name else None
        if email is None:
            raise ValidationFailed("manager", f"unknown user {name!r}; with options.create_managers the manager "
                                              "is created, which needs options.email_domain and a name")
        full_name = " ".join(name.split())
        values = {"email": normalize_email(email), "full_name": full_name, "role": str(Role.MANAGER),
                  "team_id": team_id, "active": True}
        [user_id] = ctx.writer.insert(User, [values], entity="user")
        ctx.lookups.add_user(user_id, values["email"], full_name, True, team_id)
        ctx.also_created["user (manager)"] += 1

    def label(self, values: dict[str, Any]) -> str:
        return f"{values['full_name']} <{values['email']}>"

    def register(self, ctx: Context, row: Row) -> None:
        f = row.final
        ctx.lookups.add_user(row.record_id, f["email"], f["full_name"], f["active"], f["team_id"])
