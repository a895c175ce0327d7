"""Web-form intake: forms an admin configures (forms.py), what their fields may fill (fields.py), and the
submission use case behind `POST /api/forms/<key>` (intake.py; the route itself is crm/http/forms_api.py)."""
