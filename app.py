"""The frame: page config, the login gate and role-based navigation. Everything else lives in pages/.

`streamlit run app.py` finds the `app = st.App(...)` below and serves it with uvicorn, which imports this file as
the module `app`: the server then carries the web-form API (crm/http) beside the pages, in the same process.
Streamlit itself runs this file as `__main__` on every run of every browser session, which draws the frame."""
import streamlit as st

from ui import navigation, session


def main() -> None:
    st.set_page_config(page_title="CRM", page_icon=":material/handshake:", layout="wide")
    actor = session.authenticate()
    specs = navigation.pages_for(actor.role if actor else None)
    pages = [st.Page(spec.path, title=spec.title, icon=spec.icon, url_path=spec.url_path, default=i == 0,
                     visibility="hidden" if spec.hidden else "visible") for i, spec in enumerate(specs)]
    if actor is None:
        # A signed-out visitor who follows a link to a page (a contact's 360° view, say) signs in right there and
        # then sees that page: every other URL shows the sign-in form until then.
        pages += [st.Page(navigation.LOGIN.path, title=navigation.LOGIN.title, url_path=spec.url_path,
                          visibility="hidden") for spec in navigation.all_pages() if spec != navigation.LOGIN]
    else:
        session.sidebar(actor)
    st.navigation(pages).run()


if __name__ == "__main__":
    main()
else:
    from crm.http import forms_api

    app = st.App(__file__, routes=forms_api.routes())
