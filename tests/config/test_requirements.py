"""The runtime lock (what the image installs) holds what the app needs and nothing of the tools.

Checked against the installed distributions' own metadata; building a throwaway virtualenv
from the runtime lock is too slow for the suite (docs/deployment.md says how to do it by hand).
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import sys
import tomllib
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
APP_PACKAGES = ("config", "shipments", "warehouses", "operations")
# Imported only by `make` to start local services; never by the app, gunicorn or Celery.
DEV_ONLY_MODULES = {ROOT / "config" / "embedded.py"}
DEV_TOOLS = {"pytest", "pytest-django", "mypy", "ruff", "playwright", "schemathesis", "hypothesis"}


def pins(lock: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-r "):
            continue
        name, _, version = line.partition("==")
        assert version, f"{lock.name}: {line!r} is not pinned"
        found[canonicalize_name(name)] = version
    return found


def closure(roots: list[str]) -> set[str]:
    """Every distribution the roots need, by the installed metadata (extras and markers honoured)."""
    needed: dict[str, set[str]] = {}
    todo = [Requirement(root) for root in roots]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        extras = needed.get(name)
        if extras is not None and set(requirement.extras) <= extras:
            continue
        needed[name] = (extras or set()) | set(requirement.extras)
        for text in metadata.distribution(name).requires or []:
            dependency = Requirement(text)
            environments = [{**default_environment(), "extra": e} for e in ["", *needed[name]]]
            if dependency.marker is None or any(
                dependency.marker.evaluate(env) for env in environments
            ):
                todo.append(dependency)
    return set(needed)


def runtime_dependencies() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"])


def test_the_dev_lock_installs_the_runtime_lock_and_pins_each_package_once() -> None:
    lines = [line.strip() for line in DEV_LOCK.read_text().splitlines()]
    assert "-r requirements.lock" in lines
    both = set(pins(RUNTIME_LOCK)) & set(pins(DEV_LOCK))
    assert not both, f"pinned in both lock files: {sorted(both)}"


def test_the_runtime_lock_satisfies_every_runtime_dependency() -> None:
    runtime = pins(RUNTIME_LOCK)
    missing = closure(runtime_dependencies()) - set(runtime)
    assert not missing, f"needed at run time but not in requirements.lock: {sorted(missing)}"


def test_no_dev_only_package_is_in_the_runtime_lock() -> None:
    runtime = set(pins(RUNTIME_LOCK))
    assert not runtime & DEV_TOOLS
    extra = runtime - closure(runtime_dependencies())
    assert not extra, (
        f"{sorted(extra)} pinned in requirements.lock (the image) but no runtime dependency "
        "needs them: move them to requirements-dev.lock, or name them in pyproject's dependencies"
    )


def _third_party_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in APP_PACKAGES}


def test_every_module_the_app_imports_comes_from_the_runtime_lock() -> None:
    runtime = set(pins(RUNTIME_LOCK))
    providers = metadata.packages_distributions()
    outside: dict[str, str] = {}
    for package in APP_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path in DEV_ONLY_MODULES:
                continue
            for module in _third_party_imports(path):
                dists = {canonicalize_name(d) for d in providers.get(module, [])}
                if not dists & runtime:
                    outside[module] = str(path.relative_to(ROOT))
    assert not outside, f"imported by the app but not in requirements.lock: {outside}"
