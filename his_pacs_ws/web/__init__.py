"""The operator console at /console and the Prometheus metrics at /metrics: server-rendered
HTML on the same WSGI application and port as the SOAP services."""
