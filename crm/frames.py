"""Query results as DataFrames."""
import pandas as pd


def result_frame(result) -> pd.DataFrame:
    """A DataFrame of a SQLAlchemy result, its columns named after the query's. Rows become plain tuples first:
    pandas inspects every row object it is given, which costs more than the query at a few ten thousand rows."""
    columns = list(result.keys())
    return pd.DataFrame([tuple(row) for row in result.all()], columns=columns)
