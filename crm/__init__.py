"""The CRM domain package: data, use cases, models and the CLI. Never imports streamlit."""
