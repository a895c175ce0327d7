"""Automation rules (docs/automations.md): a trigger and an action an admin configures.

`rules` holds the admin's use cases and the firing log, `triggers` and `actions` the catalogues, `engine` fires
rules on events in the caller's transaction (`handle_event`), and `runner` fires the time triggers for
`python -m crm automations run`.
"""
