"""Streamlit helpers shared by app.py and pages/: session, navigation, forms and feedback. Never used by crm/."""
