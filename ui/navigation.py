"""Which pages each role gets. Pure data, so tests and the benchmark can enumerate pages without Streamlit."""
import json
from dataclasses import dataclass

from crm.models import Role


@dataclass(frozen=True)
class PageSpec:
    path: str  # relative to app.py
    title: str
    icon: str
    url_path: str
    hidden: bool = False  # reached by links from other pages (a record's 360° view), not from the menu


# URL paths differ from the file names on purpose. Streamlit still knows the legacy pages/ folder mode, in
# which /<file name> runs pages/<file name>.py directly, without app.py's login gate (on a fresh server,
# and in AppTest after the first run). A URL path that no file is named after always goes through app.py.
LOGIN = PageSpec("pages/login.py", "Sign in", ":material/login:", "sign-in")
HOME = PageSpec("pages/home.py", "Home", ":material/home:", "start")
ADMIN = PageSpec("pages/admin.py", "Admin", ":material/admin_panel_settings:", "administration")
CONTACTS = PageSpec("pages/contacts.py", "Contacts", ":material/contacts:", "contact-list")
CONTACT = PageSpec("pages/contact.py", "Contact", ":material/person:", "contact-360", hidden=True)
COMPANIES = PageSpec("pages/companies.py", "Companies", ":material/domain:", "company-list")
COMPANY = PageSpec("pages/company.py", "Company", ":material/business:", "company-360", hidden=True)
IMPORT = PageSpec("pages/imports.py", "Import", ":material/upload_file:", "data-import")
PIPELINE = PageSpec("pages/pipeline.py", "Pipeline", ":material/view_kanban:", "deal-pipeline")
DEAL = PageSpec("pages/deal.py", "Deal", ":material/handshake:", "deal-detail", hidden=True)
FORECAST = PageSpec("pages/forecast.py", "Forecast", ":material/trending_up:", "sales-forecast")
MODELS = PageSpec("pages/models.py", "Models", ":material/model_training:", "model-cards")
KPIS = PageSpec("pages/kpis.py", "KPIs", ":material/monitoring:", "kpi-dashboard")
SEGMENTS = PageSpec("pages/segments.py", "Segments", ":material/filter_alt:", "segment-builder")
HYGIENE = PageSpec("pages/hygiene.py", "Data hygiene", ":material/cleaning_services:", "data-hygiene")
AUTOMATIONS = PageSpec("pages/automations.py", "Automations", ":material/bolt:", "automation-rules")


def _roles_with(right: str) -> frozenset[Role]:
    """Roles whose default rights include `right` (data/reference/role_rights.json). The menu follows the
    defaults; the page and crm/ check the live rights, which an admin may have changed."""
    from crm.schema import reference_path

    defaults = json.loads(reference_path("role_rights.json").read_text(encoding="utf-8"))
    return frozenset(Role(r) for r, rights in defaults.items() if not r.startswith("_") and right in rights)


IMPORT_ROLES = _roles_with("data.import")
PIPELINE_ROLES = _roles_with("deals.edit_own")
FORECAST_ROLES = _roles_with("forecast.view")
SEGMENT_ROLES = _roles_with("segments.manage")  # marketers and admins
MODEL_ROLES = FORECAST_ROLES | SEGMENT_ROLES  # managers, marketers (cross-sell), admins
HYGIENE_ROLES = _roles_with("data.hygiene")  # managers and admins


def pages_for(role: Role | str | None) -> list[PageSpec]:
    """The pages registered for a role, default page first; None (signed out) gets only the login page."""
    if role is None:
        return [LOGIN]
    pages = [HOME, CONTACTS, COMPANIES, CONTACT, COMPANY]
    if Role(role) in PIPELINE_ROLES:
        pages += [PIPELINE, DEAL]
    if Role(role) in FORECAST_ROLES:
        pages += [FORECAST, KPIS]
    if Role(role) in SEGMENT_ROLES:
        pages.append(SEGMENTS)
    if Role(role) in MODEL_ROLES:
        pages.append(MODELS)
    if Role(role) in IMPORT_ROLES:
        pages.append(IMPORT)
    if Role(role) in HYGIENE_ROLES:
        pages.append(HYGIENE)
    if Role(role) is Role.ADMIN:
        pages += [AUTOMATIONS, ADMIN]
    return pages


def all_pages() -> list[PageSpec]:
    """Every page the app can register, once each."""
    seen: dict[str, PageSpec] = {}
    for role in [None, *Role]:
        for spec in pages_for(role):
            seen.setdefault(spec.path, spec)
    return list(seen.values())
