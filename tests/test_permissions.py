"""Role rights in outline: reps own, managers their team, marketers read contacts, admins everything."""
import pytest

from crm.contacts import create_contact, get_contact, update_contact
from crm.db import read_scope, session_scope
from crm.errors import PermissionDenied
from crm.models import ContactInput
from crm.permissions import can_edit, can_read, readable_owner_ids
from tests.factories import actor, make_user


@pytest.fixture
def org(engine):
    """Two teams. East: manager Mia, reps Ravi and Rosa. West: rep Wen. Plus a marketer and an admin."""
    people = {
        "admin": make_user(engine, "admin"), "marketer": make_user(engine, "marketer"),
        "mia": make_user(engine, "manager", team="East"), "ravi": make_user(engine, "rep", team="East"),
        "rosa": make_user(engine, "rep", team="East"), "wen": make_user(engine, "rep", team="West"),
    }
    with session_scope(engine) as s:
        people["ravis_contact"] = create_contact(session=s, actor=actor(engine, people["ravi"]),
                                                 data=ContactInput(first_name="Ravi's", last_name="Client")).id
    return people


# (who, area, owner, may read, may edit)
CASES = [
    ("ravi", "contacts", "ravi", True, True),     # own record
    ("rosa", "contacts", "ravi", True, False),    # teammate's: read, not edit
    ("wen", "contacts", "ravi", False, False),    # other team: neither
    ("mia", "contacts", "ravi", True, True),      # manager: their team
    ("mia", "contacts", "wen", False, False),     # manager: not another team
    ("marketer", "contacts", "wen", True, False),  # marketers read all contacts, edit none
    ("marketer", "deals", "ravi", False, False),  # and touch no deals
    ("admin", "deals", "wen", True, True),
]


@pytest.mark.parametrize("who, area, owner, may_read, may_edit", CASES)
def test_rights_matrix(engine, org, who, area, owner, may_read, may_edit):
    with read_scope(engine) as s:
        me = actor(engine, org[who])
        assert can_read(s, me, area, org[owner]) is may_read
        assert can_edit(s, me, area, org[owner]) is may_edit


def test_use_cases_enforce_rights_not_just_the_ui(engine, org):
    cid = org["ravis_contact"]
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        update_contact(session=s, actor=actor(engine, org["rosa"]), contact_id=cid,
                       data=ContactInput(first_name="Hijacked"), seen_version=1)
    with read_scope(engine) as s, pytest.raises(PermissionDenied):
        get_contact(session=s, actor=actor(engine, org["wen"]), contact_id=cid)
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        create_contact(session=s, actor=actor(engine, org["rosa"]),
                       data=ContactInput(first_name="Gift", owner_id=org["ravi"]))


def test_readable_owner_ids_scopes_list_queries(engine, org):
    with read_scope(engine) as s:
        assert readable_owner_ids(s, actor(engine, org["admin"]), "contacts") is None
        assert readable_owner_ids(s, actor(engine, org["marketer"]), "contacts") is None
        assert sorted(readable_owner_ids(s, actor(engine, org["rosa"]), "contacts")) == sorted(
            [org["mia"], org["ravi"], org["rosa"]])
        assert readable_owner_ids(s, actor(engine, org["wen"]), "deals") == [org["wen"]]


def test_rights_are_rows_an_admin_can_change(engine, org):
    from sqlmodel import select

    from crm.models import RoleRight
    with session_scope(engine) as s:
        s.add(RoleRight(role="rep", name="contacts.edit_team"))
    with read_scope(engine) as s:
        assert can_edit(s, actor(engine, org["rosa"]), "contacts", org["ravi"])
    with session_scope(engine) as s:
        s.delete(s.exec(select(RoleRight).where(RoleRight.role == "rep", RoleRight.name == "contacts.edit_team")).one())
