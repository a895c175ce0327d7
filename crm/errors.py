"""Typed domain errors. Each carries a message a user can read; pages show it next to the field."""


class CRMError(Exception):
    """Base class: anything the CLI prints as one line and pages show with st.error."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(CRMError):
    pass


class PermissionDenied(CRMError):
    pass


class ValidationFailed(CRMError):
    """Bad input for one field (and, in imports, one row)."""

    def __init__(self, field: str, message: str, *, row: int | None = None):
        where = f"row {row}, " if row is not None else ""
        super().__init__(f"{where}{field}: {message}")
        self.field = field
        self.row = row
        self.reason = message


class EditConflict(CRMError):
    """Someone else saved the record after the version the user was looking at."""

    def __init__(self, message: str, *, current_version: int, changes: list[dict] | None = None):
        super().__init__(message)
        self.current_version = current_version
        self.changes = changes or []


class AuthenticationFailed(CRMError):
    pass


def from_pydantic(exc) -> ValidationFailed:
    """The first problem of a pydantic ValidationError, as our typed error naming the field."""
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or "input"
    return ValidationFailed(field, first.get("msg", "is not valid").removeprefix("Value error, "))
