"""Showing user text safely in Streamlit's markdown-rendering elements (st.error, st.toast, headings)."""
import re

# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones markdown, HTML and
# Streamlit's LaTeX ($) would otherwise interpret.
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$&])")


def md_escape(text: object) -> str:
    """Text that markdown shows literally: no links, emphasis, HTML or maths from user input."""
    return _SPECIAL.sub(r"\\\1", str(text))
