"""Use cases: one function each, taking plain data and a unit of work, returning plain data."""
