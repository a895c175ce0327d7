"""Keeps the KPI cube up to date in the same transaction as every write (crm/kpis/cube.py).

A write can reach the tables the cube reads (contact, sales_order, order_line, list_subscription_event) in three
ways, and each one stashes the contacts it is about to change, while the database still has them as they were:
- the ORM unit of work (use cases that add or edit objects): `before_flush` looks at the pending changes;
- statements run through a session (`update(Contact)...`, `insert(Order.__table__)`, executemany by id):
  `do_orm_execute` runs before them, reads the rows an INSERT brings, and selects the rows an UPDATE or DELETE
  will touch with its own WHERE;
- the importer's driver-level bulk insert on SQLite calls `note_rows` itself.
`before_commit` settles: the cube gets each stashed contact's new share minus its old one. A rollback forgets.
"""
from sqlalchemy import event, select
from sqlalchemy.orm import ORMExecuteState, attributes
from sqlalchemy.sql.elements import BinaryExpression, BindParameter
from sqlmodel import Session

from crm.kpis import cube
from crm.models import Contact, ListSubscriptionEvent, Order, OrderLine

CONTACT_FIELDS = {"owner_id", "deleted_at", "source"}  # what a contact's share of the cube depends on
TABLES = {t.name: t for t in (Contact.__table__, Order.__table__, OrderLine.__table__, ListSubscriptionEvent.__table__)}


def _values(obj, name: str) -> list:
    """The attribute's pending value and the value it had before."""
    history = attributes.get_history(obj, name)
    return [*history.added, *history.unchanged, *history.deleted]


def _stash_orders(session: Session, order_ids) -> None:
    cube.stash(session, cube.contacts_of_orders(session, order_ids))


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context, _instances) -> None:
    contacts, orders = [], []
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Order | ListSubscriptionEvent):
            contacts += _values(obj, "contact_id")
        elif isinstance(obj, OrderLine):
            orders += _values(obj, "order_id")
        elif isinstance(obj, Contact) and obj not in session.new and (obj in session.deleted or any(
                attributes.get_history(obj, name).has_changes() for name in CONTACT_FIELDS)):
            contacts.append(obj.id)
    if contacts or orders:
        with session.no_autoflush:
            cube.stash(session, contacts)
            _stash_orders(session, orders)


def note_rows(session: Session, table_name: str, rows: list[dict]) -> None:
    """Rows about to be inserted (or updated by id) outside the session's statement path (the importer's bulk insert
    on SQLite); also used for the rows of INSERT statements."""
    if table_name in (Order.__tablename__, ListSubscriptionEvent.__tablename__):
        cube.stash(session, [r.get("contact_id") for r in rows])
    elif table_name == OrderLine.__tablename__:
        _stash_orders(session, [r.get("order_id") for r in rows])
    elif table_name == Contact.__tablename__ and any(CONTACT_FIELDS & r.keys() for r in rows):
        cube.stash(session, [r.get("id") for r in rows])


def _touched_by(session: Session, table, statement, params, column) -> list:
    """`column` of the rows an UPDATE or DELETE is about to touch (selected with its own WHERE)."""
    where = statement.whereclause
    if where is None:
        return [v for (v,) in session.execute(select(column)).all()]
    many = params if isinstance(params, list) else [params or {}]
    if isinstance(where, BinaryExpression) and where.left is table.c.id and isinstance(where.right, BindParameter) \
            and where.right.key in many[0]:
        ids = [p[where.right.key] for p in many]  # executemany by id: the ids are the parameters
        if column is table.c.id:
            return ids
        return [v for i in range(0, len(ids), cube.CHUNK)
                for (v,) in session.execute(select(column).where(table.c.id.in_(ids[i:i + cube.CHUNK]))).all()]
    found = []
    for p in many:
        found += [v for (v,) in session.execute(select(column).where(where), p).all()]
    return found


def _set_values(statement, name: str) -> list:
    """A literal value an UPDATE's .values(...) gives `name`, if any."""
    for column, value in (getattr(statement, "_values", None) or {}).items():
        if getattr(column, "key", column) == name and hasattr(value, "value"):
            return [value.value]
    return []


@event.listens_for(Session, "do_orm_execute")
def _on_statement(state: ORMExecuteState) -> None:
    statement = state.statement
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = TABLES.get(getattr(getattr(statement, "table", None), "name", None))
    if table is None or not cube.ready(state.session):
        return
    session, params = state.session, state.parameters
    rows = params if isinstance(params, list) else [params or {}]
    set_columns = {getattr(c, "key", c) for c in (getattr(statement, "_values", None) or {})} | {k for r in rows for k in r}
    if state.is_insert:
        note_rows(session, table.name, [{**{c: None for c in set_columns}, **r} for r in rows])
    elif table is Contact.__table__:
        if state.is_delete or CONTACT_FIELDS & set_columns:
            cube.stash(session, _touched_by(session, table, statement, params, table.c.id))
    elif table is OrderLine.__table__:
        _stash_orders(session, _touched_by(session, table, statement, params, table.c.order_id)
                      + [r.get("order_id") for r in rows] + _set_values(statement, "order_id"))
    else:
        cube.stash(session, _touched_by(session, table, statement, params, table.c.contact_id)
                   + [r.get("contact_id") for r in rows] + _set_values(statement, "contact_id"))


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    session.flush()
    cube.settle(session)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    cube.forget(session)
