"""Structured logs: every line one JSON document (or logfmt pair list), with the hospital
zone's offset, an access line per request with the client's address, no patient data."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import requests

from tests.soap.conftest import application_request, client
from tests.soap.nodes import Node


def test_json_logs_one_document_a_line_with_access_lines(server, database_url, tmp_path):
    node = Node(database_url, tmp_path, "--log-format", "json", env={
        "HIS_PACS_DATA_DIR": server.env["HIS_PACS_DATA_DIR"], "HIS_PACS_TIMEZONE": "Asia/Shanghai"})
    try:
        node.wait_ready()
        requests.get(node.url + "/ws/his?wsdl", timeout=10, headers={"X-Forwarded-For": "10.1.2.3"})
        request = application_request()
        client(node.url, "his").SubmitApplication(request=request)
    finally:
        assert node.stop() == 0
    lines = [line for line in node.log().splitlines() if line.strip()]
    documents = [json.loads(line) for line in lines]  # every line parses
    for document in documents:
        assert datetime.fromisoformat(document["time"]).utcoffset() == timedelta(hours=8)
        assert {"level", "logger", "msg", "pid"} <= set(document)
    [start] = [d for d in documents if " serving http://" in d["msg"]]
    assert start["level"] == "info"
    access = [d for d in documents if d["logger"] == "his_pacs_ws.access"]
    wsdl = next(d for d in access if d["msg"] == "GET /ws/his 200")
    assert wsdl["client"] == "127.0.0.1" and wsdl["forwarded_for"] == "10.1.2.3" and wsdl["bytes"] > 1000
    assert any(d["msg"] == "POST /ws/his 200" for d in access)
    assert any("SubmitApplication" in d["msg"] and request["MessageId"] in d["msg"] for d in documents)
    text = node.log()
    assert request["Patient"]["PatientId"] not in text and "小明" not in text  # never patient data


def test_logfmt_lines(server, database_url, tmp_path):
    node = Node(database_url, tmp_path, "--log-format", "logfmt",
                env={"HIS_PACS_DATA_DIR": server.env["HIS_PACS_DATA_DIR"]})
    try:
        node.wait_ready()
    finally:
        node.stop()
    lines = [line for line in node.log().splitlines() if line.strip()]
    assert lines and all(line.startswith("time=") and " level=" in line and " msg=" in line for line in lines)
    assert any("logger=his_pacs_ws.access" in line and "client=127.0.0.1" in line for line in lines)
