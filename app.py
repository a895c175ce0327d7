"""The frame: page config, the login gate and role-based navigation. Everything else lives in pages/."""
import streamlit as st

from ui import navigation, session

st.set_page_config(page_title="CRM", page_icon=":material/handshake:", layout="wide")

actor = session.authenticate()
specs = navigation.pages_for(actor.role if actor else None)
pages = [st.Page(spec.path, title=spec.title, icon=spec.icon, url_path=spec.url_path, default=i == 0,
                 visibility="hidden" if spec.hidden else "visible") for i, spec in enumerate(specs)]
if actor is not None:
    session.sidebar(actor)
st.navigation(pages).run()
