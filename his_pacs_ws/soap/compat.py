"""spyne 2.14 on Python 3.12 and 3.13. Imported by ``his_pacs_ws.soap`` before spyne.

spyne vendors an old ``six`` whose ``six.moves`` importer has only ``find_module``, which
the import system stopped calling in 3.12: give it the ``find_spec`` protocol of six 1.16
as spyne's copy is loaded. (``cgi``, gone in 3.13, comes from the ``legacy-cgi`` package.)
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys

SIX = "spyne.util.six"


def _find_spec(self, fullname, path=None, target=None):
    return importlib.util.spec_from_loader(fullname, self) if fullname in self.known_modules else None


def _create_module(self, spec):
    return self.load_module(spec.name)


def _exec_module(self, module):
    pass  # load_module did it


def patch_six_importer(module) -> None:
    """Add the find_spec protocol to the ``six.moves`` importer of a loaded ``six``."""
    importer = module._SixMetaPathImporter
    if not hasattr(importer, "find_spec"):
        importer.find_spec, importer.create_module, importer.exec_module = _find_spec, _create_module, _exec_module


class _PatchingLoader:
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        patch_six_importer(module)


class SixFinder:
    """Finds spyne's ``six`` as usual and patches it once executed."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != SIX:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _PatchingLoader(spec.loader)
        return spec


def install() -> None:
    if SIX in sys.modules:  # spyne came first: patch the copy in use
        patch_six_importer(sys.modules[SIX])
    elif not any(isinstance(f, SixFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, SixFinder())


install()
