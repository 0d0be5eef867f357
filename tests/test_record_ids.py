"""Source record ids as every command reads them: one rule in Python and in SQL."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from cxunify.record_ids import ID_SPACE, clean_id, clean_id_sql

_CON = duckdb.connect()
_QUERY = f"SELECT {clean_id_sql('$id')}"

ids = st.text(
    alphabet=st.sampled_from([*"C1'0 -/#é", *ID_SPACE, "\x00", "\x07", "\x1b", "\x7f"]),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(text=ids)
def test_an_id_is_cleaned_alike_in_python_and_in_sql(text: str):
    """explain --record, evaluate's truth and update --delete read ids in Python or SQL, and
    must name the record the run stored by the other."""
    [(stored,)] = _CON.execute(_QUERY, {"id": text}).fetchall()
    assert (stored or "") == clean_id(text)


def test_an_id_loses_its_control_characters_and_its_ends_whitespace():
    """'C6\\x00' (a NUL a legacy system left in) was stored so, and `explain crm:C6` found no
    record."""
    assert clean_id("C6\x00") == clean_id("\tC\x076\u00a0") == "C6"
    assert clean_id("'7284919287000") == "7284919287000" and clean_id("'C1") == "'C1"
