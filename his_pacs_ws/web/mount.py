"""The front of the WSGI application: /console and /metrics here, everything else to the
SOAP dispatcher, each SOAP call counted on its way out."""

from __future__ import annotations

import time

from his_pacs_ws.services.context import Context
from his_pacs_ws.web.app import PREFIX, Console
from his_pacs_ws.web.metrics import Metrics


class Front:
    def __init__(self, dispatcher, context: Context, *, operations: set[str], call_key: str):
        self.dispatcher = dispatcher
        self.console = Console(context)
        self.metrics = Metrics(context, operations)
        self.call_key = call_key  # where the dispatcher leaves the call (soap.call.Call)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == PREFIX or path.startswith(PREFIX + "/"):
            return self.console(environ, start_response)
        if path.rstrip("/") == "/metrics":
            body = self.metrics.scrape()
            start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        started = time.perf_counter()
        chunks = self.dispatcher(environ, start_response)
        state = environ.get(self.call_key)
        if state is not None:  # a SOAP call (not a WSDL, /health or a 404)
            self.metrics.observe(state.service, state.operation, state.fault_code or "OK",
                                 time.perf_counter() - started)
        return chunks

    def __getattr__(self, name):  # the dispatcher's own attributes (runtime, endpoints) stay reachable
        return getattr(self.dispatcher, name)


def mount(dispatcher, context: Context, **keys) -> Front:
    return Front(dispatcher, context, **keys)
