"""Drivers use the engine through its public API only: no module outside ``apps/pipeline`` reads or
writes an underscore attribute of an engine (or of its stages) or imports an underscore name from
``apps.pipeline``. Checked on the source (AST), over ``apps/`` and ``workers/``."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ENGINE_PACKAGE = ROOT / "apps" / "pipeline"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _chain(node: ast.AST) -> list[str]:
    """The names along an attribute chain, root first: ``self.engine.market`` -> [self, engine, market]."""
    names: list[str] = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        names.append(node.id)
    return names[::-1]


def _on_engine(node: ast.AST) -> bool:
    return any("engine" in name.lower() for name in _chain(node))


def engine_privacy_violations(source: str) -> list[str]:
    """``line: text`` of every underscore attribute read or written on an engine expression (a chain
    through a name containing "engine"), through ``getattr``/``setattr``/``hasattr`` too, and every
    underscore name imported from ``apps.pipeline``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and _private(node.attr) and _on_engine(node.value):
            found.append(f"{node.lineno}: .{node.attr}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr", "delattr") and len(node.args) >= 2
              and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
              and _private(node.args[1].value) and _on_engine(node.args[0])):
            found.append(f"{node.lineno}: {node.func.id}(..., {node.args[1].value!r})")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("apps.pipeline"):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if _private(a.name)]
    return sorted(found, key=lambda line: int(line.split(":")[0]))


def test_the_checker_finds_what_the_fast_backtest_used_to_do():
    source = ("engine._start(ts)\nengine._buffers.candles.clear()\nself.engine.market._roll_up(s, c)\n"
              "timelines = getattr(engine, '_fast_timelines', None)\nfrom apps.pipeline.engine import _Buffers\n"
              "engine.market.rings['ETHUSDT']\nsession._instruments\n")
    assert engine_privacy_violations(source) == [
        "1: ._start", "2: ._buffers", "3: ._roll_up", "4: getattr(..., '_fast_timelines')", "5: import _Buffers"]


def test_no_driver_reads_an_underscore_attribute_of_the_engine():
    files = [p for folder in ("apps", "workers") for p in sorted((ROOT / folder).rglob("*.py"))
             if ENGINE_PACKAGE not in p.parents]
    assert len(files) > 50
    violations = {str(p.relative_to(ROOT)): found for p in files
                  if (found := engine_privacy_violations(p.read_text(encoding="utf-8")))}
    assert violations == {}


def _imports(source: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(a.name for a in node.names)
    return modules


def test_the_market_app_does_not_depend_on_the_pipeline():
    """The pipeline builds on the market app (venues, order books, candles); the session loops live
    in ``apps.pipeline`` (docs/architecture.md, "The engine")."""
    files = sorted((ROOT / "apps" / "market").rglob("*.py"))
    assert files
    offenders = {str(p.relative_to(ROOT)): sorted(m for m in _imports(p.read_text(encoding="utf-8"))
                                                   if m == "apps.pipeline" or m.startswith("apps.pipeline."))
                 for p in files}
    assert {k: v for k, v in offenders.items() if v} == {}
