"""Admin page, Quotas tab: targets per user or team and period, one at a time or a whole year (crm.quotas)."""
from datetime import date

import pandas as pd
import streamlit as st

from crm import quotas
from crm.clock import today
from crm.db import read_scope
from crm.errors import ValidationFailed
from crm.models import TeamView, UserView
from crm.quotas import QuotaView, quota_periods
from ui.forms import FormKeys, field_error, show_outcome, submit_button

KINDS = {"month": "Monthly", "quarter": "Quarterly"}
OWNER_FIELDS = ("owner", "user_id", "team_id")  # the domain's names for what the one Owner picker chooses
COLUMNS = ["Owner", "Kind", "From", "To", "Amount"]


def owner_choices(people: list[UserView], teams: list[TeamView], current: QuotaView | None = None) -> dict[str, str]:
    """Owner keys ('user:3', 'team:1') to labels: active users, then teams (and an edited quota's own owner)."""
    choices = {f"user:{u.id}": u.full_name for u in people if u.active}
    if current is not None and current.user_id is not None:
        choices.setdefault(f"user:{current.user_id}", f"{current.owner_name} (inactive)")
    choices.update({f"team:{t.id}": f"Team {t.name}" for t in teams})
    return choices


def owner_ids(choice: str | None) -> dict[str, int | None]:
    """The user_id / team_id keyword arguments for an owner key (both None when nothing was chosen)."""
    kind, _, number = (choice or "").partition(":")
    return {"user_id": int(number) if kind == "user" else None, "team_id": int(number) if kind == "team" else None}


def _owner_key(quota: QuotaView) -> str:
    return f"user:{quota.user_id}" if quota.user_id is not None else f"team:{quota.team_id}"


def quotas_tab(people: list[UserView], teams: list[TeamView], generation: int) -> None:
    owners = owner_choices(people, teams)
    year_col, owner_col = st.columns(2)
    year = int(year_col.number_input("Year", min_value=2000, max_value=2100, value=today().year, step=1,
                                     key="admin_quota_filter_year"))
    shown = owner_col.selectbox("Owner", [None, *owners], key="admin_quota_filter_owner",
                                format_func=lambda o: owners.get(o, "Everyone"))
    with read_scope() as s:
        rows = quotas.list_quotas(session=s, period_from=date(year, 1, 1), period_to=date(year, 12, 31),
                                  **owner_ids(shown))
    st.dataframe(pd.DataFrame([{
        "Owner": q.owner_name, "Kind": q.owner_kind, "From": q.period_start, "To": q.period_end, "Amount": q.amount,
    } for q in rows], columns=COLUMNS), hide_index=True,
        column_config={"Amount": st.column_config.NumberColumn(format="localized")})
    left, right = st.columns(2)
    with left:
        _create_form(owners, generation)
    with right:
        _year_form(owners, generation)
    if rows:
        _edit_form(rows, people, teams)


def _owner_input(key: FormKeys, submit_key: str, owners: dict[str, str], current: str | None = None) -> None:
    options = list(owners)
    st.selectbox("Owner", options, index=options.index(current) if current in options else 0, key=key("owner"),
                 format_func=owners.get)
    for field in OWNER_FIELDS:
        field_error(submit_key, field)


def _period_inputs(key: FormKeys, submit_key: str, start: date, end: date) -> None:
    from_col, to_col = st.columns(2)
    with from_col:
        st.date_input("From", value=start, key=key("period_start"))
        field_error(submit_key, "period_start")
    with to_col:
        st.date_input("To", value=end, key=key("period_end"))
        field_error(submit_key, "period_end")


def _this_quarter() -> tuple[date, date]:
    return next(p for p in quota_periods("quarter", today().year) if p[0] <= today() <= p[1])


def _create_form(owners: dict[str, str], generation: int) -> None:
    key = FormKeys("admin_quota_new_", generation)
    with st.form("admin_quota_create_form"):
        st.markdown("**Set a quota**")
        _owner_input(key, "admin_quota_create", owners)
        _period_inputs(key, "admin_quota_create", *_this_quarter())
        st.number_input("Amount", min_value=0.0, step=1000.0, key=key("amount"))
        field_error("admin_quota_create", "amount")

        def create(s, actor, v) -> str:
            saved = quotas.save_quota(session=s, actor=actor, **owner_ids(v["owner"]), period_start=v["period_start"],
                                      period_end=v["period_end"], amount=v["amount"])
            return f"Set a quota of {saved.amount:,.2f} for {saved.owner_name}"

        submitted = submit_button("Set quota", key="admin_quota_create", form=key, action=create, type="primary")
    show_outcome("admin_quota_create", submitted)


def _year_form(owners: dict[str, str], generation: int) -> None:
    key = FormKeys("admin_quota_fill_", generation)
    with st.form("admin_quota_fill_form"):
        st.markdown("**Set a whole year**")
        _owner_input(key, "admin_quota_fill_save", owners)
        year_col, kind_col = st.columns(2)
        year_col.number_input("Year", min_value=2000, max_value=2100, value=today().year, step=1, key=key("year"))
        kind_col.radio("Periods", list(KINDS), horizontal=True, key=key("kind"), format_func=KINDS.get)
        st.number_input("Amount per period", min_value=0.0, step=1000.0, key=key("amount"))
        field_error("admin_quota_fill_save", "amount_per_period")
        st.checkbox("Replace the amounts of periods that already have a quota", key=key("overwrite"))

        def fill(s, actor, v) -> str:
            done = quotas.set_quotas_for_year(session=s, actor=actor, **owner_ids(v["owner"]), kind=v["kind"],
                                              year=int(v["year"]), amount_per_period=v["amount"],
                                              overwrite=v["overwrite"])
            return (f"{owners.get(v['owner'])}, {int(v['year'])}: {done.created} created, {done.updated} updated, "
                    f"{done.skipped} left as they were")

        # Replaced amounts move those quotas' versions on, so the edit form reloads too.
        submitted = submit_button("Set the year", key="admin_quota_fill_save", form=key, action=fill,
                                  reset=["admin_quota_edit_"])
    show_outcome("admin_quota_fill_save", submitted)


def _label(quota: QuotaView) -> str:
    return f"{quota.owner_name} · {quota.period_start} – {quota.period_end} · {quota.amount:,.2f}"


def _edit_form(rows: list[QuotaView], people: list[UserView], teams: list[TeamView]) -> None:
    labels = {q.id: _label(q) for q in rows}
    picked = st.selectbox("Edit a quota", list(labels), key="admin_quota_pick", format_func=labels.get)
    quota = next(q for q in rows if q.id == picked)
    owners = owner_choices(people, teams, quota)
    prefix, save_key, delete_key = (f"admin_quota_edit_{quota.id}_", f"admin_quota_edit_{quota.id}_save",
                                    f"admin_quota_edit_{quota.id}_delete")
    key = FormKeys(prefix, quota.version)
    with st.form(f"admin_quota_edit_{quota.id}_form"):
        _owner_input(key, save_key, owners, current=_owner_key(quota))
        _period_inputs(key, save_key, quota.period_start, quota.period_end)
        st.number_input("Amount", min_value=0.0, value=quota.amount, step=1000.0, key=key("amount"))
        field_error(save_key, "amount")
        st.checkbox("Delete for good (the audit log keeps the old values)", key=key("confirm"))
        field_error(delete_key, "confirm")
        st.caption(f"Editing version {key.generation}")

        def save(s, actor, v) -> str:
            saved = quotas.save_quota(session=s, actor=actor, **owner_ids(v["owner"]), period_start=v["period_start"],
                                      period_end=v["period_end"], amount=v["amount"], quota_id=quota.id,
                                      seen_version=key.generation)
            return f"Saved the quota of {saved.owner_name}"

        def delete(s, actor, v) -> str:
            if not v["confirm"]:
                raise ValidationFailed("confirm", "tick the box above to delete this quota")
            quotas.delete_quota(session=s, actor=actor, quota_id=quota.id, seen_version=key.generation)
            return f"Deleted the quota of {quota.owner_name}"

        saved = submit_button("Save quota", key=save_key, form=key, action=save, type="primary")
        deleted = submit_button("Delete quota", key=delete_key, form=key, action=delete)
    show_outcome(save_key, saved)
    show_outcome(delete_key, deleted)
