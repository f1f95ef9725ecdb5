"""The SOAP edge: spyne wire types, faults, the services and the WSGI assembly."""

from his_pacs_ws.soap import compat  # noqa: F401  (before anything imports spyne)
