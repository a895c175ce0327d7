"""Cached reads for the models page and the deal page: cards on the data version, live models as resources."""
import pandas as pd
import streamlit as st

from crm.db import get_engine, read_scope
from crm.ml.card import ModelCard
from crm.permissions import Actor, require
from crm.products import product_names
from ui.directory import version


@st.cache_data(ttl=3600, max_entries=16, show_spinner=False)
def _card(model: str, drift: bool, data_version: int, live: str | None) -> ModelCard:
    engine = get_engine()
    if model == "win":
        from crm.ml.win import win_card
        return win_card(engine, drift=drift)
    if model == "cross-sell":
        from crm.ml.crosssell import cross_sell_card
        return cross_sell_card(engine, drift=drift)
    from crm.ml.lead import lead_card
    return lead_card(engine, drift=drift)


def card(model: str, *, drift: bool = False) -> ModelCard:
    """A model's card; with drift, also how its inputs moved since training (reads today's data: seconds)."""
    return _card(model, drift, version(), live_version(model))


@st.cache_data(ttl=3600, show_spinner=False)
def _products(data_version: int) -> list[str]:
    with read_scope() as s:
        return product_names(session=s)


def products() -> list[str]:
    return _products(version())


@st.cache_data(ttl=600, max_entries=32, show_spinner=False)
def _top_buyers(product: str, n: int, data_version: int) -> pd.DataFrame:
    from crm.ml.crosssell import top_buyers
    return top_buyers(get_engine(), product, n)


def top_buyers(actor: Actor, product: str, n: int) -> pd.DataFrame:
    """The cross-sell model's top n likely buyers of a product; readers need contacts.read_all (marketers, admins)."""
    require(actor, "contacts.read_all", "see likely buyers across every owner's contacts")
    return _top_buyers(product, n, version())


def live_version(model: str) -> str | None:
    from crm.ml.registry import champion
    live = champion(model)
    return live.version if live else None


@st.cache_resource(max_entries=3, show_spinner=False)
def live_win_model(model_version: str):
    """The live win model, loaded once per version for the whole server."""
    from crm.ml.win import load_champion
    return load_champion()


@st.cache_data(ttl=600, max_entries=256, show_spinner=False)
def _explain_deal(deal_id: int, deal_version: int, model_version: str, data_version: int):
    from crm.ml.win import explain_deal
    return explain_deal(get_engine(), deal_id, model=live_win_model(model_version))


def explain_deal(deal_id: int, deal_version: int):
    """The live win model's explanation of a deal (the caller has checked the reader may see it), or None."""
    model_version = live_version("win")
    return None if model_version is None else _explain_deal(deal_id, deal_version, model_version, version())
