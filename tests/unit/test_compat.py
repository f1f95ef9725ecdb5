"""spyne 2.14 on Python 3.12+: its vendored six's importer gets the find_spec protocol.

The import system of 3.12 no longer calls ``find_module``; the test takes it away from the
importer on any Python, so it shows what 3.12 and 3.13 do."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import importlib
{setup}
import spyne.util.six as six
del six._SixMetaPathImporter.find_module  # as if the import system never called it
module = importlib.import_module("spyne.util.six.moves.http_cookies")
print(module.__name__, hasattr(module, "SimpleCookie"))
"""


def probe(setup: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE.format(setup=setup)], capture_output=True, text=True,
                          timeout=60)


def test_six_moves_import_through_find_spec():
    result = probe("import his_pacs_ws.soap")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["http.cookies", "True"]


def test_without_the_compat_module_six_moves_cannot_be_imported():
    result = probe("")
    # 3.11 falls back to find_module and says find_spec is missing; 3.12+ find nothing
    assert result.returncode != 0
    assert "find_spec" in result.stderr or "No module named 'spyne.util.six.moves" in result.stderr


def test_the_compat_module_comes_before_spyne():
    script = ("import sys, his_pacs_ws.soap.types; from his_pacs_ws.soap import compat; "
              "print(hasattr(sys.modules['spyne.util.six']._SixMetaPathImporter, 'find_spec'))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "True", result.stderr

