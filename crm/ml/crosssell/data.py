"""What cross-sell reads from the database, in a handful of bulk queries (no per-customer queries).

Everything is loaded once into a `History`; feature building (features.py) then filters it by an "as of" time.
Times become float days since the Unix epoch (NaN for undated migrated orders), so both databases read alike.
"""
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import func, literal, select

from crm.errors import ValidationFailed
from crm.models import BehaviorEvent, Company, Contact, CustomFieldDef, CustomFieldValue, Order, OrderLine, Product

LEVELS = ("contact", "company")
NOT_BOUGHT = ("cancelled", "refunded")  # order statuses that do not make a customer an owner
TOP_OFFERS = 10  # offer-view counts become features for the most viewed offers only
MAX_CATEGORIES = 30  # text custom fields with more distinct values than this are left out


@dataclass
class History:
    """Customers (row i is customer index i), products (row j is product index j), purchases and events."""
    level: str
    customers: pd.DataFrame  # id, external_id, name, owner_id, created_day, industry, country, employees, cf_*
    products: pd.DataFrame  # id, name, sku
    purchases: pd.DataFrame  # cust, prod, order_id, day (NaN: undated), amount
    events: pd.DataFrame  # cust, day, offer
    offers: list[str]
    custom_numeric: list[str]
    custom_categorical: list[str]

    @property
    def dated_share(self) -> float:
        orders = self.purchases.drop_duplicates("order_id")
        return float(orders["day"].notna().mean()) if len(orders) else 0.0

    def product_index(self, product: str) -> int:
        """The index of a product given by name or SKU (exact, then case-insensitive)."""
        for column in ("name", "sku"):
            exact = np.flatnonzero(self.products[column].fillna("").to_numpy() == product)
            if len(exact):
                return int(exact[0])
        folded = np.flatnonzero(self.products["name"].str.casefold().to_numpy() == product.casefold())
        if len(folded):
            return int(folded[0])
        raise ValidationFailed("product", f"no product named {product!r}")


def _frame(conn, query, columns: list[str]) -> pd.DataFrame:
    """A query's rows as a frame (plain tuples: pandas probes SQLAlchemy rows slowly)."""
    return pd.DataFrame([tuple(row) for row in conn.execute(query)], columns=columns)


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise ValidationFailed("level", f"unknown level {level!r}; use contact or company")
    return level


def to_days(values) -> np.ndarray:
    """Timestamps (naive = UTC, or aware) as float days since the epoch; NaN where missing."""
    stamps = pd.to_datetime(pd.Series(values, dtype=object), utc=True, errors="coerce")
    seconds = (stamps - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds()
    return (seconds / 86400.0).to_numpy(dtype=float)


def load_history(engine, level: str, *, events_since_day: float | None = None) -> History:
    check_level(level)
    with engine.connect() as conn:
        customers = _customers(conn, level)
        products = _frame(conn, select(Product.id, Product.name, Product.sku)
                          .where(Product.deleted_at.is_(None)).order_by(Product.id), ["id", "name", "sku"])
        purchases = _purchases(conn, level)
        events = _events(conn, level, events_since_day)
        custom = _custom_fields(conn, level)
    return _assemble(level, customers, products, purchases, events, custom)


def _customers(conn, level: str) -> pd.DataFrame:
    if level == "contact":
        c, co = Contact.__table__.c, Company.__table__.c
        query = (select(c.id, c.external_id, c.first_name, c.last_name, c.owner_id, c.created_at, co.industry,
                        func.coalesce(c.country, co.country).label("country"), co.employees)
                 .select_from(Contact.__table__.outerjoin(Company.__table__, co.id == c.company_id))
                 .where(c.deleted_at.is_(None)).order_by(c.id))
        frame = _frame(conn, query, ["id", "external_id", "first_name", "last_name",
                                                                 "owner_id", "created_at", "industry", "country",
                                                                 "employees"])
        frame["name"] = (frame["first_name"].fillna("") + " " + frame["last_name"].fillna("")).str.strip()
        frame = frame.drop(columns=["first_name", "last_name"])
    else:
        co = Company.__table__.c
        query = (select(co.id, co.external_id, co.name, co.owner_id, co.created_at, co.industry, co.country,
                        co.employees).where(co.deleted_at.is_(None)).order_by(co.id))
        frame = _frame(conn, query, ["id", "external_id", "name", "owner_id",
                                                                 "created_at", "industry", "country", "employees"])
    frame["created_day"] = to_days(frame.pop("created_at"))
    frame["employees"] = pd.to_numeric(frame["employees"], errors="coerce").astype(float)
    return frame


def _customer_column(level: str):
    o, c = Order.__table__.c, Contact.__table__.c
    return o.contact_id if level == "contact" else func.coalesce(o.company_id, c.company_id)


def _purchases(conn, level: str) -> pd.DataFrame:
    o, line, c, p = Order.__table__.c, OrderLine.__table__.c, Contact.__table__.c, Product.__table__.c
    customer = _customer_column(level)
    joined = (OrderLine.__table__.join(Order.__table__, o.id == line.order_id)
              .join(Product.__table__, p.id == line.product_id)
              .outerjoin(Contact.__table__, c.id == o.contact_id))
    query = (select(customer.label("customer_id"), line.product_id, o.id.label("order_id"), o.ordered_at,
                    (line.quantity * line.unit_price).label("amount"))
             .select_from(joined)
             .where(o.deleted_at.is_(None), p.deleted_at.is_(None), o.status.notin_(NOT_BOUGHT),
                    customer.is_not(None)))
    frame = _frame(conn, query, ["customer_id", "product_id", "order_id", "ordered_at",
                                                             "amount"])
    frame["day"] = to_days(frame.pop("ordered_at"))
    frame["amount"] = pd.to_numeric(frame["amount"], errors="coerce").fillna(0.0).astype(float)
    return frame


def _events(conn, level: str, since_day: float | None) -> pd.DataFrame:
    e, c = BehaviorEvent.__table__.c, Contact.__table__.c
    customer = e.contact_id if level == "contact" else c.company_id
    query = (select(customer.label("customer_id"), e.occurred_at, e.offer)
             .select_from(BehaviorEvent.__table__.join(Contact.__table__, c.id == e.contact_id))
             .where(c.deleted_at.is_(None), customer.is_not(None)))
    if since_day is not None:
        since = pd.Timestamp(since_day * 86400.0, unit="s", tz="UTC").to_pydatetime()
        query = query.where(e.occurred_at >= since)
    frame = _frame(conn, query, ["customer_id", "occurred_at", "offer"])
    frame["day"] = to_days(frame.pop("occurred_at"))
    return frame


def _custom_fields(conn, level: str) -> pd.DataFrame:
    d, v = CustomFieldDef.__table__.c, CustomFieldValue.__table__.c
    query = (select(d.key, d.field_type, v.record_id, v.value_text, v.value_number, v.value_bool)
             .select_from(CustomFieldValue.__table__.join(CustomFieldDef.__table__, d.id == v.field_id))
             .where(d.entity == literal(level), d.deleted_at.is_(None)))
    return _frame(conn, query,
                  ["key", "field_type", "record_id", "value_text", "value_number", "value_bool"])


def _assemble(level, customers, products, purchases, events, custom) -> History:
    index = pd.Series(np.arange(len(customers)), index=customers["id"].to_numpy())
    product_index = pd.Series(np.arange(len(products)), index=products["id"].to_numpy())
    purchases = purchases[purchases["customer_id"].isin(index.index)]
    purchases = pd.DataFrame({"cust": index[purchases["customer_id"]].to_numpy(),
                              "prod": product_index[purchases["product_id"]].to_numpy(),
                              "order_id": purchases["order_id"].to_numpy(), "day": purchases["day"].to_numpy(),
                              "amount": purchases["amount"].to_numpy()})
    events = events[events["customer_id"].isin(index.index)]
    offers = events["offer"].dropna().value_counts().index[:TOP_OFFERS].tolist()
    events = pd.DataFrame({"cust": index[events["customer_id"]].to_numpy(), "day": events["day"].to_numpy(),
                           "offer": events["offer"].to_numpy()})
    numeric, categorical = _pivot_custom(customers, custom)
    return History(level, customers, products, purchases, events, offers, numeric, categorical)


def _pivot_custom(customers: pd.DataFrame, custom: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Numbers and yes/no become numeric columns, short vocabularies categorical ones; dates are left out."""
    numeric, categorical = [], []
    for key, rows in custom.groupby("key"):
        kind, column = rows["field_type"].iloc[0], f"cf_{key}"
        by_record = rows.set_index("record_id")
        if kind in ("number", "currency", "percent", "integer", "decimal"):
            values = pd.to_numeric(by_record["value_number"], errors="coerce")
            numeric.append(column)
        elif kind in ("bool", "boolean", "checkbox"):
            values = by_record["value_bool"].astype(float)
            numeric.append(column)
        elif kind != "date" and by_record["value_text"].nunique() <= MAX_CATEGORIES:
            values = by_record["value_text"]
            categorical.append(column)
        else:
            continue
        customers[column] = customers["id"].map(values[~values.index.duplicated()])
    for column in categorical:
        customers[column] = customers[column].astype(object).where(customers[column].notna(), None)
    return numeric, categorical


def repeat_customers(engine, level: str) -> int:
    """Customers with two orders or more (the card's data minimum), counted in SQL. For contacts it reads only the
    order index (a million orders in well under a second), so cancelled and deleted orders count here too."""
    o, c = Order.__table__.c, Contact.__table__.c
    if level == "contact":
        per_customer = (select(o.contact_id).where(o.contact_id.is_not(None)).group_by(o.contact_id)
                        .having(func.count() >= 2).subquery())
    else:
        customer = _customer_column(level)
        per_customer = (select(customer.label("customer_id"))
                        .select_from(Order.__table__.outerjoin(Contact.__table__, c.id == o.contact_id))
                        .where(o.deleted_at.is_(None), customer.is_not(None))
                        .group_by(customer).having(func.count() >= 2).subquery())
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(per_customer)).scalar_one())
