"""The layering rule of ARCHITECTURE.md: ``ml/`` never imports Django or ``apps``."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_PROBE = r"""
import importlib, importlib.abc, pkgutil, sys

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("django", "apps", "rest_framework", "channels", "celery"):
            raise ImportError(f"ml must not import {name}")
        return None

sys.meta_path.insert(0, Refuse())
import ml
names = [m.name for m in pkgutil.walk_packages(ml.__path__, "ml.")]
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_every_ml_module_imports_without_django_or_apps():
    done = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip().splitlines()[-1]) > 40  # every module was walked, not none
