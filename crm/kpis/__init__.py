"""The CRM metrics managers decide from, each defined once, in SQL (docs/kpis.md)."""
