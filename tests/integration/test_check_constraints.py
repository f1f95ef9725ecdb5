"""The migrated database allows what the rules and the contract allow.

Every CHECK constraint PostgreSQL holds is one the models declare, and an enumeration CHECK
(``one_of``) allows exactly the values of the domain enum it is built from. An enum value
added without a migration fails here: the wire type would take a value the database refuses.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import CheckConstraint, text

from his_pacs_ws.db import exchange, models  # noqa: F401 (exchange's tables join the metadata)
from his_pacs_ws.soap import types as t

CONSTRAINTS = """
SELECT n.nspname, c.relname, con.conname, pg_get_constraintdef(con.oid),
       array(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.i)
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE con.contype = 'c' AND n.nspname IN ('public', 'exchange')
"""
# PostgreSQL shows ``x IN ('A','B')`` as ``((x)::text = ANY ((ARRAY['A'::character varying, ...])``
_LITERAL = re.compile(r"'((?:[^']|'')*)'::")

# The wire enumerations whose values are stored in a constrained column.
STORED_WIRE_ENUMS = {
    ("applications", "status"): t.ApplicationStatus,
    ("charge_lines", "trigger"): t.ChargeTrigger,
    ("refund_lines", "source"): t.RefundSourceEnum,
    ("reports", "result_status"): t.ResultStatusEnum,
    ("critical_values", "status"): t.CriticalValueStatus,
}


def _key(table) -> tuple[str, str]:
    return table.schema or "public", table.name


@pytest.fixture(scope="module")
def database_checks(engine) -> dict[tuple[str, str, str], tuple[str, list[str]]]:
    """(schema, table, constraint name) -> (definition, columns), as PostgreSQL has them."""
    with engine.connect() as conn:
        return {(schema, table, name): (definition, list(columns))
                for schema, table, name, definition, columns in conn.execute(text(CONSTRAINTS))}


def declared_checks() -> dict[tuple[str, str, str], CheckConstraint]:
    return {(*_key(table), constraint.name): constraint
            for table in models.Base.metadata.tables.values()
            for constraint in table.constraints if isinstance(constraint, CheckConstraint)}


def enumeration(definition: str) -> list[str]:
    assert "= ANY (" in definition, f"not an enumeration: {definition}"
    return [value.replace("''", "'") for value in _LITERAL.findall(definition)]


def test_the_database_has_exactly_the_checks_the_models_declare(database_checks):
    assert sorted(database_checks) == sorted(declared_checks())


def test_every_enumeration_check_allows_exactly_its_enums_values(database_checks):
    enumerations = {key: c.info["one_of"] for key, c in declared_checks().items() if "one_of" in c.info}
    # and every enumeration the database holds is one of these
    assert {key for key, (d, _) in database_checks.items() if "= ANY (" in d} == set(enumerations)
    for key, (column, allowed) in enumerations.items():
        definition, columns = database_checks[key]
        assert columns == [column], key
        stored = enumeration(definition)
        assert len(stored) == len(set(stored)), definition
        assert set(stored) == set(allowed), f"{key}: the database allows {stored}, the domain {list(allowed)}"


def test_every_other_check_is_not_an_enumeration(database_checks):
    # An IN list written by hand in models.py would escape the comparison above.
    for key, constraint in declared_checks().items():
        if "one_of" not in constraint.info:
            assert "= ANY (" not in database_checks[key][0], key


@pytest.mark.parametrize("column", sorted(STORED_WIRE_ENUMS), ids="{0[0]}.{0[1]}".format)
def test_a_wire_enumeration_takes_what_its_column_allows(database_checks, column):
    table, name = column
    (definition,) = [d for (schema, tbl, _), (d, cols) in database_checks.items()
                     if schema == "public" and tbl == table and cols == [name]]
    wire = STORED_WIRE_ENUMS[column].Attributes.values
    assert set(enumeration(definition)) == set(wire)
