"""HTTP routes served beside the pages by the app's own process (app.py hands them to st.App). Not pages: no
Streamlit here, only Starlette, and every rule lives in the use cases they call."""
