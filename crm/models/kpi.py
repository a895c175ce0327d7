"""Pre-aggregated KPI summaries (crm/kpis/cube.py keeps them up to date on every write; docs/kpis.md, "Speed")."""
from datetime import date

from sqlmodel import Field, SQLModel


class KpiCube(SQLModel, table=True):
    """Additive KPI measures per day and contact owner: revenue, orders, first orders, active-customer spans, list
    changes, and month-start transitions. owner_id -1 holds everyone's total, 0 contacts without an owner."""
    __tablename__ = "kpi_cube"
    measure: str = Field(primary_key=True, max_length=40)
    owner_id: int = Field(primary_key=True)
    day: date = Field(primary_key=True)
    key: str = Field(default="", primary_key=True, max_length=120)  # a channel or a list name, else ""
    value: float = 0.0

