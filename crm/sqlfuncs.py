"""Small SQL expressions that must read the same on SQLite and PostgreSQL."""
from sqlalchemy import Float, Integer
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class days_between(FunctionElement):  # noqa: N801 - used like a SQL function
    """Fractional days from the first timestamp to the second."""
    type = Float()
    inherit_cache = True


@compiles(days_between, "sqlite")
def _days_sqlite(element, compiler, **kw):
    earlier, later = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"(julianday({later}) - julianday({earlier}))"


@compiles(days_between, "postgresql")
@compiles(days_between, "duckdb")  # the bench's in-memory copy (crm.bench_kpis) reads like PostgreSQL
def _days_postgres(element, compiler, **kw):
    earlier, later = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400.0)"


class whole_days(FunctionElement):  # noqa: N801
    """Whole days from the second timestamp to the first (truncated toward zero)."""
    type = Integer()
    inherit_cache = True


@compiles(whole_days, "sqlite")
def _whole_days_sqlite(element, compiler, **kw):
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


@compiles(whole_days, "postgresql")
@compiles(whole_days, "duckdb")  # the bench's in-memory copy (crm.bench_kpis) reads like PostgreSQL
def _whole_days_postgresql(element, compiler, **kw):
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(TRUNC(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400) AS INTEGER)"


class unindexed(FunctionElement):  # noqa: N801
    """A column's own value, which SQLite's planner will not look up in an index (its documented unary-plus idiom).

    SQLite has no statistics here and picks indexes by rule: without this it may walk an index that matches the
    ORDER BY through far more rows than a selective equality index would touch. PostgreSQL gets the plain column.
    """
    inherit_cache = True

    def __init__(self, column):
        super().__init__(column)
        self.type = column.type


@compiles(unindexed)
def _unindexed(element, compiler, **kw):
    return compiler.process(next(iter(element.clauses)), **kw)


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element, compiler, **kw):
    return "+" + compiler.process(next(iter(element.clauses)), **kw)


class epoch(FunctionElement):  # noqa: N801 - used like a SQL function
    """Seconds since 1970-01-01 UTC of a timestamp or date, as a float (NULL stays NULL)."""
    type = Float()
    inherit_cache = True


@compiles(epoch, "sqlite")
def _epoch_sqlite(element, compiler, **kw):
    (clause,) = element.clauses
    # The argument appears twice, so it is compiled twice: each copy binds its own parameters.
    arg, again = compiler.process(clause, **kw), compiler.process(clause, **kw)
    # Whole seconds by unixepoch() (SQLite ≥ 3.38) plus the stored microseconds: exact, where julianday() drifts by
    # tens of microseconds and a time stored on a whole second could floor to the second before.
    return f"(unixepoch(substr({arg}, 1, 19)) + coalesce(CAST(substr({again}, 20) AS REAL), 0.0))"


@compiles(epoch, "postgresql")
@compiles(epoch, "duckdb")  # the bench's in-memory copy (crm.bench_kpis) reads like PostgreSQL
def _epoch_postgres(element, compiler, **kw):
    (arg,) = (compiler.process(a, **kw) for a in element.clauses)
    return f"CAST(EXTRACT(EPOCH FROM {arg}) AS DOUBLE PRECISION)"
