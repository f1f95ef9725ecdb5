"""Pure rules: the status machine, billing arithmetic. Imports neither spyne nor SQLAlchemy."""
