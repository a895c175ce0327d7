"""The parts of the contact 360° page: details, tags, quick actions, the edit form, delete and privacy."""
import json
from typing import Any

import pandas as pd
import streamlit as st

from crm import contacts, privacy, tags
from crm.db import session_scope
from crm.deals import DealInput, create_deal
from crm.errors import ValidationFailed
from crm.models import CompanyView, ContactInput, ContactView
from crm.permissions import Actor
from crm.tags import TagView
from ui.activity_forms import log_popover, task_popover
from ui.contact_list import CONTACT_FIELDS, contact_fields
from ui.custom_fields import custom_inputs, custom_values
from ui.directory import Lookups, version
from ui.forms import FormKeys, field_error, show_outcome, submit_button


def details(contact: ContactView, custom: dict[str, Any], company: CompanyView | None, known: Lookups) -> None:
    st.subheader("Details")
    labels = {f.key: f.label for f in known.contact_fields}
    rows = [("Email", contact.email), ("Phone", contact.phone), ("Company", company.name if company else None),
            ("Job title", contact.job_title), ("City", contact.city), ("Country", contact.country),
            ("Lifecycle stage", contact.lifecycle_stage.value), ("Source", contact.source),
            ("Owner", known.readers.get(contact.owner_id) or known.assignable.get(contact.owner_id)),
            ("Lead score", None if contact.lead_score is None else f"{contact.lead_score:.0f}"),
            ("Email opt-in", "yes" if contact.email_opt_in else "no"),
            ("Do not contact", "yes" if contact.do_not_contact else "no"),
            *((labels.get(k, k), v) for k, v in custom.items())]
    st.dataframe(pd.DataFrame([{"Field": k, "Value": "" if v is None else str(v)} for k, v in rows]),
                 hide_index=True, key="contact_details", height=35 * (len(rows) + 1) + 3)


def tag_editor(contact: ContactView, current: list[TagView], known: Lookups) -> None:
    key = FormKeys(f"contact_tags_{contact.id}_", version())
    with st.form(f"contact_tags_{contact.id}_form"):
        st.multiselect("Tags", list(known.tags), default=[t.id for t in current], format_func=known.tags.get,
                       key=key("tags"))
        st.text_input("New tag", key=key("new"), max_chars=60, placeholder="Type a name to create and add a tag")

        def save(s, actor, v) -> str:
            wanted = set(v["tags"] or [])
            if (v["new"] or "").strip():
                wanted.add(tags.ensure_tag(session=s, actor=actor, name=v["new"]).id)
            before = {t.id for t in current}
            tags.change_tags(session=s, actor=actor, entity="contact", record_ids=[contact.id],
                             add=sorted(wanted - before), remove=sorted(before - wanted))
            return "Tags saved"

        done = submit_button("Save tags", key=f"contact_tags_{contact.id}_save", form=key, action=save)
    show_outcome(f"contact_tags_{contact.id}_save", done)


def quick_actions(actor: Actor, contact: ContactView, known: Lookups) -> None:
    if contact.deleted_at is not None:
        return
    log_col, task_col, deal_col = st.columns(3)
    links = {"contact_id": contact.id}
    log_popover(log_col, f"contact_log_{contact.id}", links)
    task_popover(task_col, f"contact_task_{contact.id}", links, actor, known.assignable)
    with deal_col.popover("Create a deal", icon=":material/handshake:"):
        key = FormKeys(f"contact_deal_{contact.id}_", version())
        with st.form(f"contact_deal_{contact.id}_form"):
            st.text_input("Deal title", key=key("title"), max_chars=200)
            field_error(f"contact_deal_{contact.id}_save", "title")
            st.number_input("Amount", min_value=0.0, step=100.0, key=key("amount"))
            st.date_input("Expected close", value=None, key=key("close"))

            def deal(s, who, v) -> str:
                row = create_deal(session=s, actor=who, data=DealInput(
                    title=v["title"] or "", amount=v["amount"] or 0, expected_close=v["close"], contact_id=contact.id))
                return f"Deal created in {row.pipeline} / {row.stage}"

            done = submit_button("Create deal", key=f"contact_deal_{contact.id}_save", form=key, action=deal)
        show_outcome(f"contact_deal_{contact.id}_save", done)


def _changed(values: dict[str, Any], contact: ContactView) -> dict[str, Any]:
    """The contact fields whose submitted value differs from the stored one (what a PATCH should carry)."""
    out = {}
    for name in CONTACT_FIELDS:
        value = values.get(name)
        if isinstance(value, str):
            value = value.strip() or ("" if name in ("first_name", "last_name") else None)
        if value != getattr(contact, name):
            out[name] = value
    return out


def edit_tab(actor: Actor, contact: ContactView, custom: dict[str, Any], known: Lookups) -> None:
    save_key = f"contact_edit_{contact.id}_save"
    key = FormKeys(f"contact_edit_{contact.id}_", contact.version)
    if contact.deleted_at is None:
        with st.form(f"contact_edit_{contact.id}_form"):
            contact_fields(key, known, save_key, current=contact)
            custom_inputs(key, known.contact_fields, save_key, editable_by=actor.role, current=custom)
            st.caption(f"Editing version {key.generation}. If someone saves in between, you will be told who changed "
                       "what, and nothing of yours or theirs is overwritten.")

            def save(s, who, v) -> str:
                contacts.update_contact(session=s, actor=who, contact_id=contact.id, seen_version=key.generation,
                                        data=ContactInput(**_changed(v, contact)),
                                        custom=custom_values(v, known.contact_fields, who.role, current=custom))
                return "Contact saved"

            done = submit_button("Save", key=save_key, form=key, action=save, type="primary")
        show_outcome(save_key, done)
    with st.form(f"contact_delete_{contact.id}_form"):
        deleted = contact.deleted_at is not None
        verb = contacts.restore_contact if deleted else contacts.delete_contact

        def toggle(s, who, v) -> str:
            verb(session=s, actor=who, contact_id=contact.id, seen_version=contact.version)
            return "Contact restored" if deleted else "Contact deleted (restore it from the deleted list)"

        done = submit_button("Restore contact" if deleted else "Delete contact", key=f"contact_delete_{contact.id}",
                             form=FormKeys(f"contact_delete_{contact.id}_", contact.version), action=toggle)
    show_outcome(f"contact_delete_{contact.id}", done)


def privacy_tab(actor: Actor, contact: ContactView) -> None:
    st.write("Everything we hold about this person, as a JSON file (the download is audited).")

    def export() -> bytes:
        with session_scope() as s:
            data = privacy.export_contact_data(session=s, actor=actor, contact_id=contact.id)
        return json.dumps(data, ensure_ascii=False, indent=2, default=str).encode("utf-8")

    st.download_button("Download personal data (JSON)", data=export, file_name=f"contact-{contact.id}.json",
                       mime="application/json", key=f"contact_privacy_export_{contact.id}", on_click="ignore",
                       icon=":material/download:")
    st.divider()
    st.write("Erase: replace this person's name, email, phone, notes and other personal data everywhere — including "
             "the audit history — with placeholders. Deal amounts and order totals stay, so reports still add up. "
             "This cannot be undone.")
    with st.form(f"contact_erase_{contact.id}_form"):
        key = FormKeys(f"contact_erase_{contact.id}_", contact.version)
        st.checkbox("I understand that erasing cannot be undone", key=key("confirm"))

        def erase(s, who, v) -> str:
            if not v["confirm"]:
                raise ValidationFailed("confirm", "tick the box to confirm the erasure")
            privacy.erase_contact(session=s, actor=who, contact_id=contact.id, seen_version=contact.version)
            return "Personal data erased"

        done = submit_button("Erase personal data", key=f"contact_erase_{contact.id}", form=key, action=erase)
    show_outcome(f"contact_erase_{contact.id}", done)
