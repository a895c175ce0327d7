"""Importing companies, contacts, deals, products, orders, activities, tickets and users from CSV or XLSX.

The same use cases serve the page and `python -m crm import`; docs/import.md describes the file formats.
"""
from crm.imports.columns import COLUMNS, ENTITIES
from crm.imports.dates import DateOrder, detect_date_order
from crm.imports.jobs import (
    FilePreview, ImportJobView, ImportSummary, canonical_columns, error_file_bytes, list_jobs, preview_file,
    preview_mapping, run_import,
)
from crm.imports.mapping import (
    CUSTOM, CustomFieldSpec, Mapping, custom_field_choices, custom_key, infer_type, list_mappings, load_mapping,
    save_mapping, suggest_mapping,
)
from crm.imports.reading import Table, read_table
from crm.imports.revert import RevertSummary, revert_import

__all__ = [
    "COLUMNS", "CUSTOM", "CustomFieldSpec", "DateOrder", "ENTITIES", "FilePreview", "ImportJobView",
    "ImportSummary", "Mapping", "RevertSummary", "Table", "canonical_columns", "custom_field_choices", "custom_key",
    "detect_date_order", "error_file_bytes", "infer_type", "list_jobs", "list_mappings", "load_mapping",
    "preview_file", "preview_mapping", "read_table", "revert_import", "run_import", "save_mapping",
    "suggest_mapping",
]
