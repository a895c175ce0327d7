"""Keeping the CRM's data clean: duplicates and merges that can be undone, stale and incomplete records, consistent
formatting, tags and lists (issue 8). Each module is one tool; pages and the CLI call them."""
