"""Statements with named parameters are sent as PostgreSQL's numbered ones, converted once:
psycopg would parse a long statement's placeholders again on every call (it caches only
statements up to 4 kB, and a submission's is longer)."""

from __future__ import annotations

import pytest

from his_pacs_ws.db import repositories
from his_pacs_ws.db.raw import _numbered


def test_named_parameters_become_numbered_ones_in_order_of_first_use():
    sql, names = _numbered("SELECT %(b)s, %(a)s,\n    %(b)s WHERE x LIKE 'a%%  b' -- note\n AND y")
    assert sql == b"SELECT $1, $2,\n    $1 WHERE x LIKE 'a%  b' -- note\n AND y"  # the rest as written
    assert names == ("b", "a")


@pytest.mark.parametrize("sql", ["SELECT %(a)s, %s", "SELECT %(a)b", "SELECT %(a)t", "SELECT 'a%'"])
def test_anything_else_with_a_percent_sign_is_refused(sql):
    with pytest.raises(ValueError):
        _numbered(sql)


def test_the_submission_is_converted_once():
    _numbered.cache_clear()
    for _ in range(3):
        sql, names = _numbered(repositories._SUBMIT)
    assert _numbered.cache_info().hits == 2 and _numbered.cache_info().misses == 1
    import re
    assert set(names) == set(re.findall(r"%\((\w+)\)s", repositories._SUBMIT))
    assert b"%(" not in sql and f"${len(names)}".encode() in sql and f"${len(names) + 1}".encode() not in sql
