"""Products as the pages list them."""
from sqlmodel import Session, select

from crm.models import Product


def product_names(*, session: Session) -> list[str]:
    """The names of live products, A–Z (readable by every signed-in role)."""
    return list(session.exec(select(Product.name).where(Product.deleted_at.is_(None)).order_by(Product.name)).all())
