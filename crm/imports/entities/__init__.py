"""One importer per entity; the engine looks them up by the import's entity name."""
from crm.imports.entities.base import Importer
from crm.imports.entities.companies import CompanyImporter
from crm.imports.entities.contacts import ContactImporter
from crm.imports.entities.deals import DealImporter
from crm.imports.entities.engagement import ActivityImporter, OrderImporter, TicketImporter
from crm.imports.entities.products import ProductImporter
from crm.imports.entities.users import UserImporter

IMPORTERS: dict[str, type[Importer]] = {i.entity: i for i in (
    CompanyImporter, ContactImporter, DealImporter, ProductImporter, OrderImporter, ActivityImporter, TicketImporter,
    UserImporter)}
