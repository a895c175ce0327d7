"""Admin page, Web forms tab: list the forms, create one with its field mapping, edit it, rotate its token, switch it
on or off; changes go through crm.webforms.forms. A new token is shown once, right after it is made, with the
address to post to and a curl example: it is not stored (only its hash is), so nothing can show it again."""
import shlex
from datetime import datetime
from urllib.parse import urlsplit

import pandas as pd
import streamlit as st

from crm.db import read_scope
from crm.errors import ValidationFailed
from crm.models import CustomFieldDefView
from crm.permissions import Actor
from crm.webforms import forms
from crm.webforms.fields import CUSTOM_PREFIX, FLAG_TARGETS, FORM_ROLE, LIST_TARGETS, TEXT_TARGETS, TOKEN_FIELD
from crm.webforms.forms import FormToken, WebFormView
from ui.forms import FormKeys, show_outcome, submit_button

# Session state: (form key, token, mapping) for the render right after a save. Not under a form's key prefix, since a
# successful save clears those.
NEW_TOKEN = "admin_webform_token_once"
FIRST = ["email", "first_name", "last_name", "phone"]  # the usual ones first, then the rest by name
TARGET_ORDER = FIRST + sorted((TEXT_TARGETS | FLAG_TARGETS | LIST_TARGETS) - set(FIRST))
STARTER = {"email": "email", "first_name": "first_name", "last_name": "last_name"}  # a new form's suggestion


@st.cache_data(ttl=3600, max_entries=16, show_spinner=False)
def _submissions(actor: Actor, total: int) -> dict[str, tuple[int, datetime]]:
    with read_scope() as s:
        return forms.submission_counts(session=s, actor=actor)


def submissions(actor: Actor) -> dict[str, tuple[int, datetime]]:
    """The submissions per form, counted again only when there are new ones (the total is an index count)."""
    with read_scope() as s:
        total = forms.submission_total(session=s, actor=actor)
    return _submissions(actor, total)


def webforms_tab(actor: Actor, web_forms: list[WebFormView], contact_fields: list[CustomFieldDefView],
                 generation: int) -> None:
    _new_token()
    counts = submissions(actor)
    st.dataframe(pd.DataFrame([{
        "Name": f.name, "Key": f.key, "Address": f"/api/forms/{f.key}", "Active": f.active,
        "Rate limit (per minute)": f.rate_limit_per_minute, "Token fingerprint": f.token_fingerprint,
        "Submissions": counts.get(f.key, (0, None))[0], "Last submission": counts.get(f.key, (0, None))[1],
        "Fields": ", ".join(f"{name} → {target}" for name, target in f.mapping.items()),
    } for f in web_forms], columns=["Name", "Key", "Address", "Active", "Rate limit (per minute)",
                                    "Token fingerprint", "Submissions", "Last submission", "Fields"]),
        hide_index=True, key="admin_forms_table")
    targets = _targets(contact_fields)
    with st.expander("Add a web form", icon=":material/add:"):
        _create_form(targets, generation)
    if web_forms:
        names = {f.id: f"{f.name} ({f.key})" for f in web_forms}
        picked = st.selectbox("Edit a web form", list(names), key="admin_form_pick", format_func=names.get)
        _edit_form(next(f for f in web_forms if f.id == picked), targets)


def _targets(contact_fields: list[CustomFieldDefView]) -> dict[str, str]:
    """What a form field may fill, with its label: the contact fields, then custom fields admins may edit."""
    plain = {t: t.replace("_", " ").capitalize() for t in TARGET_ORDER}
    custom = {CUSTOM_PREFIX + f.key: f"{f.label} (custom)" for f in contact_fields if FORM_ROLE in f.edit_roles}
    return {**plain, **custom}


def _mapping_inputs(key: FormKeys, targets: dict[str, str], mapping: dict[str, str]) -> None:
    st.markdown("**Field mapping**: the name of the form's field that fills each contact field (empty: not filled)")
    named = {target: name for name, target in mapping.items()}
    columns = st.columns(3)
    for i, (target, label) in enumerate(targets.items()):
        columns[i % 3].text_input(label, value=named.get(target, ""), max_chars=100, key=key(_map_name(target)))


def _map_name(target: str) -> str:
    return "map_" + target.replace(CUSTOM_PREFIX, "cf_")


def _mapping(v: dict, targets: dict[str, str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for target in targets:
        name = (v.get(_map_name(target)) or "").strip()
        if name in mapping:
            raise ValidationFailed("mapping", f"the form field {name!r} is given for both {mapping[name]} and {target}")
        if name:
            mapping[name] = target
    return mapping


def _create_form(targets: dict[str, str], generation: int) -> None:
    key = FormKeys("admin_form_new_", generation)
    with st.form("admin_form_create_form"):
        left, mid, right = st.columns([2, 2, 1])
        left.text_input("Name", max_chars=120, key=key("name"))
        mid.text_input("Key", max_chars=40, key=key("key"), help="Part of the address: /api/forms/<key>. Lower-case "
                       "letters, digits, - and _. It cannot change later.")
        right.number_input("Rate limit (per minute)", min_value=1, max_value=forms.MAX_RATE_PER_MINUTE, value=30,
                           step=1, key=key("rate_limit_per_minute"))
        _mapping_inputs(key, targets, STARTER)

        def create(s, actor, v) -> str:
            made = forms.create_form(session=s, actor=actor, key=v["key"] or "", name=v["name"] or "",
                                     mapping=_mapping(v, targets),
                                     rate_limit_per_minute=int(v["rate_limit_per_minute"]))
            _keep_token(made)
            return f"Added the web form {made.form.name}"

        submitted = submit_button("Add web form", key="admin_form_create", form=key, action=create, type="primary")
    show_outcome("admin_form_create", submitted)


def _edit_form(form: WebFormView, targets: dict[str, str]) -> None:
    key = FormKeys(f"admin_form_edit_{form.id}_", form.version)
    with st.form(f"admin_form_edit_{form.id}_form"):
        st.text(f"Key {form.key!r} (address /api/forms/{form.key}); token fingerprint {form.token_fingerprint}; "
                f"{'active' if form.active else 'switched off: its address answers 404'}.")
        left, right = st.columns([3, 1])
        left.text_input("Name", value=form.name, max_chars=120, key=key("name"))
        right.number_input("Rate limit (per minute)", min_value=1, max_value=forms.MAX_RATE_PER_MINUTE,
                           value=form.rate_limit_per_minute, step=1, key=key("rate_limit_per_minute"))
        _mapping_inputs(key, targets, form.mapping)
        st.caption(f"Editing version {key.generation}")
        submitted = {}
        for column, (name, label, action) in zip(st.columns(3), _edit_actions(form, key, targets)):
            with column:
                submitted[name] = submit_button(label, key=f"admin_form_edit_{form.id}_{name}", form=key,
                                                action=action, type="primary" if name == "save" else "secondary")
    for name, clicked in submitted.items():
        show_outcome(f"admin_form_edit_{form.id}_{name}", clicked)


def _edit_actions(form: WebFormView, key: FormKeys, targets: dict[str, str]) -> list[tuple]:
    def save(s, actor, v) -> str:
        saved = forms.update_form(session=s, actor=actor, form_id=form.id, name=v["name"] or "",
                                  mapping=_mapping(v, targets), rate_limit_per_minute=int(v["rate_limit_per_minute"]),
                                  seen_version=key.generation)
        return f"Saved the web form {saved.name}"

    def rotate(s, actor, v) -> str:
        _keep_token(forms.rotate_token(session=s, actor=actor, form_id=form.id, seen_version=key.generation))
        return f"New token for {form.name}: the old one no longer works"

    def switch(s, actor, v) -> str:
        forms.set_form_active(session=s, actor=actor, form_id=form.id, active=not form.active,
                              seen_version=key.generation)
        return f"{'Switched off' if form.active else 'Switched on'} {form.name}"

    return [("save", "Save web form", save), ("rotate", "Rotate token", rotate),
            ("switch", "Switch off" if form.active else "Switch on", switch)]


# --- the token, once ----------------------------------------------------------------------------------------------

def _keep_token(made: FormToken) -> None:
    """For the render right after the save; popped there, so a later run (or another tab) never shows it."""
    st.session_state[NEW_TOKEN] = (made.form.key, made.token, made.form.mapping)


def _new_token() -> None:
    shown = st.session_state.pop(NEW_TOKEN, None)
    if shown is None:
        return
    form_key, token, mapping = shown
    url = f"{_origin()}/api/forms/{form_key}"
    with st.container(border=True, key="admin_form_token_box"):
        st.warning("Copy this token now. Only its hash is stored: it is shown this once, and never again.",
                   icon=":material/key:")
        st.code(token, language=None)
        st.text(f"Post submissions to {url}")
        st.code(_curl(url, token, mapping), language="bash")


def _origin() -> str:
    """The app's own scheme and host, as the browser reached it (the API ignores server.baseUrlPath)."""
    try:
        parts = urlsplit(st.context.url or "")
    except Exception:  # no browser context (AppTest, bare mode)
        parts = None
    return f"{parts.scheme}://{parts.netloc}" if parts and parts.netloc else "http://localhost:8501"


def _curl(url: str, token: str, mapping: dict[str, str]) -> str:
    examples = {"email": "ann@example.com", "first_name": "Ann", "last_name": "Lee"}
    fields = [f"{name}={examples[target]}" for name, target in mapping.items() if target in examples]
    form_fields = " ".join(f"--data-urlencode {shlex.quote(f)}" for f in fields)
    return (f"curl -X POST {shlex.quote(url)} \\\n  -H {shlex.quote('X-Form-Token: ' + token)} \\\n  {form_fields}\n"
            f"# or, from a plain HTML form: a hidden input named {TOKEN_FIELD} carrying the token")
