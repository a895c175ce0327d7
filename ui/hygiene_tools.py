"""The data hygiene page's tool tabs, one draw(actor) function each; every tab lives in its own ui/hygiene_*.py."""
from ui.hygiene_formatting import formatting_tab
from ui.hygiene_incomplete import incomplete_tab
from ui.hygiene_jobs import jobs_tab
from ui.hygiene_lists import lists_tab
from ui.hygiene_stale import stale_tab
from ui.hygiene_tags import tags_tab

__all__ = ["formatting_tab", "incomplete_tab", "jobs_tab", "lists_tab", "stale_tab", "tags_tab"]
