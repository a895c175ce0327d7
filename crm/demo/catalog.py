"""The demo's fixed vocabularies: products and their purchase affinities, industries, tags, custom fields, wording."""
import numpy as np

from crm.models import Entity, FieldType, Role

# name, sku, series, list price (per seat and year unless a package), sold per seat
PRODUCTS: tuple[tuple[str, str, str, float, bool], ...] = (
    ("Core CRM Starter", "CRM-ST", "Core", 240.0, True),
    ("Core CRM Professional", "CRM-PRO", "Core", 600.0, True),
    ("Core CRM Enterprise", "CRM-ENT", "Core", 1200.0, True),
    ("Analytics add-on", "ADD-AN", "Add-ons", 180.0, True),
    ("Marketing automation", "ADD-MA", "Add-ons", 300.0, True),
    ("Service desk", "SVC-DESK", "Service", 150.0, True),
    ("Onboarding package", "PS-ONB", "Services", 2500.0, False),
    ("Premium support", "PS-PREM", "Services", 4000.0, False),
)
PER_SEAT = np.array([p[4] for p in PRODUCTS])
LIST_PRICE = np.array([p[3] for p in PRODUCTS])
STARTER, PROFESSIONAL, ENTERPRISE, ANALYTICS, MARKETING, SERVICE_DESK, ONBOARDING, PREMIUM = range(len(PRODUCTS))

# AFFINITY[a, b]: how strongly a buyer of product a goes on to buy product b (rows are normalised when used).
AFFINITY = np.array([
    # St   Pro  Ent  Ana  Mkt  Desk Onb  Prem
    [1.0, 5.0, 0.2, 0.3, 0.3, 1.0, 2.5, 0.2],  # Starter: upgrade to Professional, onboarding
    [0.1, 1.0, 0.8, 6.0, 1.5, 0.4, 0.4, 0.8],  # Professional: analytics
    [0.1, 0.2, 1.0, 1.5, 1.0, 0.4, 0.4, 5.0],  # Enterprise: premium support
    [0.1, 0.8, 0.4, 1.0, 5.5, 0.3, 0.2, 0.4],  # Analytics: marketing automation
    [0.1, 0.4, 0.4, 5.0, 1.0, 0.3, 0.2, 0.4],  # Marketing automation: analytics
    [0.6, 0.4, 0.2, 0.3, 0.3, 1.0, 0.4, 5.5],  # Service desk: premium support
    [0.8, 5.0, 0.4, 0.4, 0.4, 1.5, 0.1, 0.4],  # Onboarding: Professional
    [0.2, 0.4, 4.0, 0.4, 0.4, 2.0, 0.1, 1.0],  # Premium support: Enterprise
])
SELF_SERVE_FIRST = np.array([5.0, 2.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0])  # what web buyers start with
OFFERS = ("Starter: first month free", "Upgrade to Professional -20%", "Enterprise pilot", "Analytics trial",
          "Automation bundle", "Service desk trial", "Free onboarding workshop", "Premium support upgrade")
INTEREST_PRODUCT = {"analytics": ANALYTICS, "automation": MARKETING, "support": SERVICE_DESK}
INTERESTS = ("ai", "analytics", "automation", "integrations", "mobile", "reporting", "security", "support")

# Industry and the latent "fit" it gives a company: some industries buy far more often than others.
INDUSTRIES: dict[str, float] = {
    "Software": 0.6, "Financial services": 0.35, "Telecommunications": 0.25, "Healthcare": 0.2, "Energy": 0.05,
    "Manufacturing": 0.0, "Logistics": -0.05, "Media": -0.15, "Retail": -0.2, "Hospitality": -0.35,
    "Education": -0.4, "Government": -0.55,
}
SOURCES = ("web", "referral", "event", "outbound", "partner", "ads")
SOURCE_WEIGHTS = (0.30, 0.12, 0.12, 0.18, 0.08, 0.20)
SPEND_PER_MONTH = (9_000.0, 2_500.0, 14_000.0, 11_000.0, 4_000.0, 16_000.0)  # per 2,000 contacts

# Job titles with a seniority level (0-3); senior contacts win somewhat more often.
TITLES = (
    ("Chief Executive Officer", 3), ("Chief Technology Officer", 3), ("Chief Financial Officer", 3),
    ("VP of Sales", 2), ("VP Marketing", 2), ("Head of Operations", 2), ("IT Director", 2),
    ("Director of Procurement", 2), ("Sales Manager", 1), ("Marketing Manager", 1), ("Operations Manager", 1),
    ("Project Manager", 1), ("Account Executive", 0), ("Business Analyst", 0), ("Software Engineer", 0),
    ("Office Manager", 0), ("Customer Success Specialist", 0), ("Procurement Specialist", 0),
)
TITLE_WEIGHTS = (1, 1, 1, 2, 2, 2, 2, 2, 4, 4, 4, 4, 5, 5, 5, 4, 4, 4)

TAGS = (("VIP", "#d4af37"), ("Newsletter", "#1f77b4"), ("Partner", "#2ca02c"), ("Trade show", "#ff7f0e"),
        ("Webinar attendee", "#9467bd"), ("Decision maker", "#8c564b"), ("Champion", "#e377c2"),
        ("Churn risk", "#d62728"), ("Reference customer", "#17becf"), ("Beta tester", "#bcbd22"),
        ("Key account", "#7f7f7f"), ("Trial", "#aec7e8"))
COMPETITORS = ("Salesforce", "HubSpot", "Pipedrive", "Zoho CRM", "Microsoft Dynamics 365", "Freshsales", "Odoo",
               "In-house spreadsheets")
LISTS = ("Newsletter", "Product updates", "Events & webinars")

ALL_ROLES = [r.value for r in Role]
EDITORS = [Role.ADMIN.value, Role.MANAGER.value, Role.REP.value]
# key, entity, label, type, options
CUSTOM_FIELDS = (
    ("preferred_language", Entity.CONTACT, "Preferred language", FieldType.DROPDOWN),
    ("contract_end", Entity.COMPANY, "Contract end", FieldType.DATE),
    ("competitor", Entity.DEAL, "Competitor", FieldType.TEXT),
)

SUBJECTS = {
    "call": ("Discovery call", "Follow-up call", "Pricing discussion", "Check-in call", "Left a voicemail",
             "Reference call"),
    "email": ("Sent proposal", "Follow-up email", "Intro email", "Shared case study", "Sent pricing sheet",
              "Replied to questions"),
    "meeting": ("Product demo", "On-site workshop", "Quarterly business review", "Technical deep dive",
                "Contract review"),
    "note": ("Budget confirmed", "New stakeholder identified", "Competitor in the running", "Notes from the call",
             "Procurement process explained"),
    "task": ("Send proposal", "Follow up on quote", "Schedule demo", "Prepare contract", "Call back",
             "Confirm decision date", "Send onboarding plan"),
}
BODIES = ("Went through the current process and the main pain points.",
          "They want to see reporting before the next meeting.",
          "Procurement needs two more weeks; legal review in parallel.",
          "Champion is positive, CFO still to be convinced.",
          "Asked for a discount on a three-year term.",
          "Integration with their ERP is the deciding question.",
          "Happy with the pilot; rollout to a second team discussed.",
          "Decision moved to next quarter.")
NEXT_STEPS = ("Send proposal", "Book demo with the IT team", "Agree on pricing", "Legal review", "Sign order form",
              "Intro to the decision maker", "Security questionnaire")
TICKET_SUBJECTS = ("Cannot log in", "Import fails on a CSV file", "Question about my invoice", "Report is slow",
                   "How do I add a user?", "Email sync stopped", "Feature request: custom dashboards",
                   "Data export", "Password reset does not arrive", "Integration error")
SURVEY_COMMENTS = {
    "low": ("Too expensive for what we use.", "Support took too long.", "The app is slow for us."),
    "mid": ("Does the job.", "Good, but reporting could be better.", "Fine overall."),
    "high": ("Great support team!", "The pipeline view saves us hours.", "Easy to roll out to the whole team."),
}
WEB_PAGES = ("/", "/pricing", "/product/analytics", "/product/automation", "/customers", "/blog/crm-tips",
             "/docs/getting-started", "/compare")
FORMS = ("/demo-request", "/contact-us", "/webinar-signup", "/whitepaper")
SITE = "https://www.northwind-crm.example"
