"""The canonical columns of each importable entity: what a file's columns map onto (documented in docs/import.md)."""
from dataclasses import dataclass

from crm.models import ActivityKind, DealStatus, Lifecycle, Role, TicketStatus


@dataclass(frozen=True)
class Column:
    """One canonical column. `kind` says how a cell is read; references (company, user, ...) are looked up by name."""
    name: str
    kind: str
    help: str
    required: bool = False
    max_length: int | None = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    synonyms: tuple[str, ...] = ()


# Kinds: text, int, number, bool, date, datetime, country, choice, list; references: company, user, contact,
# deal, product, pipeline, stage, lost_reason, team. "text" is passed on trimmed; the entity's cleaner checks it.
def _c(name, kind, help, **kw) -> Column:
    return Column(name, kind, help, **kw)


EXTERNAL_ID = _c("external_id", "text", "your system's id for the record; the first upsert key", max_length=100,
                 synonyms=("id", "external id", "record id", "ext id", "opportunity id", "account id", "contact id",
                           "deal id", "order id", "ticket id", "activity id", "crm id", "source id"))
OWNER = _c("owner", "user", "the owning user, by email or full name",
           synonyms=("owner email", "account owner", "deal owner", "sales agent", "sales rep", "rep", "agent",
                     "assigned to", "salesperson"))

COMPANIES = (
    EXTERNAL_ID,
    _c("name", "text", "company name; also an upsert key if the mapping's options say match_company_by_name",
       required=True, synonyms=("company", "company name", "account", "account name", "organisation",
                                "organization", "business name")),
    _c("domain", "text", "web domain (https://www.acme.com/ becomes acme.com); the second upsert key",
       synonyms=("website", "web", "url", "web site", "company domain", "homepage")),
    _c("industry", "industry", "industry; a near miss of a known industry is rejected with a suggestion",
       synonyms=("sector", "vertical", "industry sector")),
    _c("employees", "int", "number of employees", minimum=0,
       synonyms=("employee count", "headcount", "staff", "number of employees", "size")),
    _c("annual_revenue", "number", "annual revenue (use the mapping's scale for thousands or millions)", minimum=0,
       synonyms=("revenue", "annual revenue", "turnover", "sales")),
    _c("country", "country", "ISO code (US) or English name (United States)",
       synonyms=("country code", "nation", "hq country", "headquarters")),
    _c("city", "text", "city", synonyms=("town", "hq city")),
    _c("parent", "company", "parent company, by external id, domain or name (may be another row of the file)",
       synonyms=("parent company", "subsidiary of", "parent account", "owned by")),
    OWNER,
    _c("tags", "list", "tags separated by semicolons; unknown tags are created", synonyms=("tag", "labels")),
)

CONTACTS = (
    EXTERNAL_ID,
    _c("first_name", "text", "first name (a contact needs a first or a last name)",
       synonyms=("first", "firstname", "given name", "forename")),
    _c("last_name", "text", "last name", synonyms=("last", "lastname", "surname", "family name")),
    _c("email", "text", "email address; the second upsert key",
       synonyms=("e mail", "email address", "mail", "e mail address", "work email")),
    _c("phone", "text", "phone in any format; national numbers use the row's country",
       synonyms=("phone number", "telephone", "tel", "mobile", "cell", "mobile phone", "work phone")),
    _c("job_title", "text", "job title", synonyms=("title", "position", "role title", "job")),
    _c("company", "company", "the contact's company, by external id, domain or name",
       synonyms=("company name", "account", "account name", "organisation", "organization", "employer")),
    _c("address", "text", "street address", synonyms=("street", "street address", "address line 1")),
    _c("city", "text", "city", synonyms=("town",)),
    _c("country", "country", "ISO code or English name", synonyms=("country code", "nation")),
    _c("lifecycle_stage", "choice", "lifecycle stage", choices=tuple(Lifecycle),
       synonyms=("lifecycle", "stage", "lead status", "status")),
    _c("source", "text", "lead source", synonyms=("lead source", "origin", "channel")),
    OWNER,
    _c("lead_score", "number", "lead score, 0 to 100", minimum=0, synonyms=("score",)),
    _c("email_opt_in", "bool", "opted in to marketing email (yes/no)",
       synonyms=("opt in", "opted in", "subscribed", "marketing opt in", "newsletter", "consent",
                 "marketing consent")),
    _c("do_not_contact", "bool", "never contact (yes/no)", synonyms=("dnc", "do not call", "opt out")),
    _c("interests", "list", "interests separated by semicolons", synonyms=("interest",)),
    _c("tags", "list", "tags separated by semicolons; unknown tags are created", synonyms=("tag", "labels")),
)

DEALS = (
    EXTERNAL_ID,
    _c("title", "text", "deal title (default: company and product)", max_length=200,
       synonyms=("name", "deal name", "opportunity", "opportunity name", "subject")),
    _c("pipeline", "pipeline", "pipeline by name (default: the mapping's options.pipeline, else the default one)"),
    _c("stage", "stage", "stage of the pipeline, by name; a won or lost stage closes the deal",
       synonyms=("deal stage", "sales stage", "phase", "opportunity stage")),
    _c("status", "choice", "open, won or lost (default: from the stage)", choices=tuple(DealStatus),
       synonyms=("deal status", "outcome", "result")),
    _c("amount", "number", "deal value (default: the product line's value)", minimum=0,
       synonyms=("value", "deal value", "close value", "revenue", "price", "deal amount")),
    _c("currency", "text", "ISO currency code (default USD)", max_length=3, synonyms=("currency code",)),
    _c("opened_at", "datetime", "when the deal was opened (becomes its created time)",
       synonyms=("created", "created at", "created date", "open date", "opened", "engage date", "start date")),
    _c("expected_close", "date", "expected close date", synonyms=("close by", "expected close date",
                                                                   "forecast close")),
    _c("closed_at", "datetime", "when it was won or lost (required for closed deals)",
       synonyms=("close date", "closed", "closed date", "date closed", "won date", "lost date")),
    OWNER,
    _c("company", "company", "by external id, domain or name", synonyms=("account", "account name", "company name",
                                                                          "organisation", "organization", "customer")),
    _c("contact", "contact", "by external id or email", synonyms=("contact email", "primary contact")),
    _c("lost_reason", "lost_reason", "why it was lost, by name (lost deals only)",
       synonyms=("loss reason", "reason lost", "lost reason")),
    _c("source", "text", "lead source", max_length=60, synonyms=("lead source", "origin")),
    _c("next_step", "text", "next step", max_length=300, synonyms=("next action",)),
    _c("product", "product", "a product line item, by name or SKU", synonyms=("product name", "item", "sku")),
    _c("quantity", "number", "quantity of the product (default 1)", minimum=0, synonyms=("qty", "units")),
    _c("unit_price", "number", "unit price (default: the product's list price)", minimum=0,
       synonyms=("price each", "list price")),
    _c("discount", "number", "discount as a fraction 0-1", minimum=0),
)

PRODUCTS = (
    _c("name", "text", "product name; the first upsert key", required=True, max_length=120,
       synonyms=("product", "product name", "item", "title")),
    _c("sku", "text", "stock-keeping unit; the second upsert key", max_length=60,
       synonyms=("code", "product code", "item code", "article number")),
    _c("series", "text", "product line or series", max_length=60, synonyms=("line", "family", "product line",
                                                                          "category")),
    _c("list_price", "number", "list price", minimum=0, synonyms=("price", "sales price", "unit price", "msrp",
                                                                  "retail price")),
    _c("active", "bool", "still sold (yes/no, default yes)", synonyms=("enabled", "available")),
)

ORDERS = (
    EXTERNAL_ID,
    _c("contact", "contact", "the buyer, by external id or email", synonyms=("customer email", "buyer", "customer")),
    _c("company", "company", "by external id, domain or name", synonyms=("account", "company name")),
    _c("deal", "deal", "the deal it came from, by the deal's external id", synonyms=("deal id", "opportunity")),
    _c("ordered_at", "datetime", "order date", synonyms=("order date", "date", "purchased at", "purchase date")),
    _c("status", "text", "order status (default completed)", max_length=20, synonyms=("order status",)),
    _c("total", "number", "order total (default: the line's value)", minimum=0,
       synonyms=("amount", "order total", "value", "grand total")),
    _c("currency", "text", "ISO currency code (default USD)", max_length=3),
    _c("product", "product", "a product line, by name or SKU", synonyms=("product name", "item", "sku")),
    _c("quantity", "number", "quantity (default 1)", minimum=0, synonyms=("qty", "units")),
    _c("unit_price", "number", "unit price (default: the product's list price)", minimum=0,
       synonyms=("price", "price each")),
)

ACTIVITIES = (
    EXTERNAL_ID,
    _c("kind", "choice", "call, email, meeting, note or task", required=True, choices=tuple(ActivityKind),
       synonyms=("type", "activity type", "activity")),
    _c("subject", "text", "subject", required=True, max_length=200, synonyms=("title", "summary")),
    _c("body", "text", "notes", max_length=10_000, synonyms=("notes", "description", "details", "comment")),
    _c("contact", "contact", "by external id or email", synonyms=("contact email", "with")),
    _c("company", "company", "by external id, domain or name", synonyms=("account",)),
    _c("deal", "deal", "by the deal's external id", synonyms=("opportunity",)),
    _c("owner", "user", "who logged it, by email or full name", synonyms=("logged by", "created by", "user")),
    _c("assignee", "user", "who must do it (tasks), by email or full name", synonyms=("assigned to",)),
    _c("occurred_at", "datetime", "when a call or meeting happened", synonyms=("date", "when", "occurred")),
    _c("due_at", "datetime", "when a task is due", synonyms=("due", "due date")),
    _c("done_at", "datetime", "when a task was done", synonyms=("completed", "completed at", "done")),
)

TICKETS = (
    EXTERNAL_ID,
    _c("subject", "text", "subject", required=True, max_length=200, synonyms=("title", "summary", "issue")),
    _c("contact", "contact", "by external id or email", synonyms=("requester", "customer email")),
    _c("company", "company", "by external id, domain or name", synonyms=("account",)),
    _c("owner", "user", "the agent, by email or full name", synonyms=("agent", "assignee", "assigned to")),
    _c("channel", "text", "email, phone, chat, ... (default email)", max_length=20, synonyms=("source", "via")),
    _c("status", "choice", "open, pending or resolved (default open)", choices=tuple(TicketStatus),
       synonyms=("state",)),
    _c("priority", "text", "priority (default normal)", max_length=10),
    _c("opened_at", "datetime", "when it was opened", required=True,
       synonyms=("created", "created at", "opened", "date")),
    _c("resolved_at", "datetime", "when it was resolved", synonyms=("resolved", "closed at", "solved at")),
)

USERS = (
    _c("email", "text", "sign-in email; the upsert key (or derived from the name with options.email_domain)",
       synonyms=("e mail", "email address", "login")),
    _c("full_name", "text", "full name", required=True, max_length=200,
       synonyms=("name", "sales agent", "agent", "user", "employee", "rep")),
    _c("role", "choice", "admin, manager, rep or marketer (default rep)", choices=tuple(Role)),
    _c("team", "team", "team by name; unknown teams are created with options.create_teams",
       synonyms=("regional office", "office", "region", "team name", "group")),
    _c("manager", "manager", "the user's manager, by email or name; created as a manager in the same team with "
                          "options.create_managers", synonyms=("reports to", "supervisor", "sales manager")),
    _c("active", "bool", "may sign in once a password is set (default yes)", synonyms=("enabled",)),
)

COLUMNS: dict[str, tuple[Column, ...]] = {
    "companies": COMPANIES, "contacts": CONTACTS, "deals": DEALS, "products": PRODUCTS, "orders": ORDERS,
    "activities": ACTIVITIES, "tickets": TICKETS, "users": USERS,
}
ENTITIES = tuple(COLUMNS)


def columns_of(entity: str) -> dict[str, Column]:
    return {c.name: c for c in COLUMNS[entity]}
