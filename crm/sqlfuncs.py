"""Small SQL constructs that compile differently on SQLite and PostgreSQL."""
from sqlalchemy import Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal


class days_between(FunctionElement):  # noqa: N801 - used like a SQL function
    """Fractional days from the first timestamp to the second."""
    type = Float()
    inherit_cache = True


@compiles(days_between, "sqlite")
def _days_sqlite(element, compiler, **kw):
    earlier, later = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"(julianday({later}) - julianday({earlier}))"


@compiles(days_between, "postgresql")
def _days_postgres(element, compiler, **kw):
    earlier, later = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400.0)"


class unindexed(ColumnElement):  # noqa: N801
    """The column's value, hidden from SQLite's index choice (its documented unary-plus idiom).

    SQLite without statistics sometimes walks an index that matches the ORDER BY through far more rows than a
    selective equality index would touch; wrapping the sort column steers it to the selective one. PostgreSQL,
    which plans from statistics, gets the plain column."""
    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column):
        self.column = column
        self.type = column.type


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element, compiler, **kw):
    return f"+{compiler.process(element.column, **kw)}"


@compiles(unindexed)
def _unindexed_default(element, compiler, **kw):
    return compiler.process(element.column, **kw)
