"""The web layer's shape (issue 24): every route gets what it needs through qa_service/api/deps.py and declares
what it answers (a response model, or the non-JSON response class it sends); route modules share models and
converters through qa_service/api/schemas.py, never by importing each other; the pages reuse the widget's helpers."""
from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

API = Path(__file__).resolve().parents[1] / "qa_service" / "api"
STATIC = API.parent / "static"
SHARED_MODULES = {"deps", "errors", "schemas", "validation"}  # what a route module may import from qa_service.api


def route_modules() -> list[Path]:
    return sorted(p for p in API.glob("*.py") if p.stem not in SHARED_MODULES | {"__init__"})


def test_every_route_declares_its_response_model_or_response_class():
    missing = []
    for path in route_modules():
        for route in importlib.import_module(f"qa_service.api.{path.stem}").router.routes:
            if not isinstance(route, APIRoute):
                continue
            response_class = getattr(route.response_class, "value", route.response_class)  # a default is wrapped
            sends_json = isinstance(response_class, type) and issubclass(response_class, JSONResponse)
            if sends_json and route.response_model is None:
                missing.append(f"{path.name}: {sorted(route.methods)} {route.path}")
    assert missing == []


def test_routes_read_the_application_state_only_through_deps():
    readers = [p.name for p in route_modules() if "app.state" in p.read_text(encoding="utf-8")]
    assert readers == []


def test_route_modules_do_not_import_each_other():
    crossings = []
    for path in route_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                imported = (node.module or "").split(".")[0]
                if imported and imported not in SHARED_MODULES:
                    crossings.append(f"{path.name} imports .{node.module}")
    assert crossings == []


def test_the_pages_script_reuses_the_widgets_dom_helper_and_validity_labels():
    pages = (STATIC / "pages.js").read_text(encoding="utf-8")
    assert not re.search(r"function el\(", pages) and not re.search(r"const VALIDITY\s*=", pages)
    assert "window.policyqaDom" in pages
    layout = (API.parent / "templates" / "layout.html").read_text(encoding="utf-8")
    helpers, script = layout.find('src="/static/widget.js" data-helpers'), layout.find('src="/static/pages.js"')
    assert 0 <= helpers < script  # deferred scripts run in order: the widget's helpers first
