"""The shape of media_app, read from its imports: no import cycle, and each part imports only what it may.

Every ``import`` counts, those inside functions included: a function-level import that closes a
circle is a circle all the same, only one that fails later. The parts are those of the house
style: the sweep (``media_app/cleanup/``) never reaches a face (the admin, the management
commands, cron and its Sentry monitor, the checks, the background runs, the alerts); the model,
the rules and the normal path never reach the sweep.
"""

import ast
from pathlib import Path

import media_app

PACKAGE_DIR = Path(media_app.__file__).parent
# Besides these, every ``admin*`` module is a face.
FACES = (
    "media_app.management",
    "media_app.cron",
    "media_app.checks",
    "media_app.background_runs",
    "media_app.metrics",
    "media_app.alerts",
    "media_app.cron_monitor",
)
SWEEP = "media_app.cleanup"
# The model, the rules (leaves) and the normal path.
BELOW_THE_SWEEP = [
    f"media_app.{name}"
    for name in (
        "models",
        "paths",
        "references",
        "uploads",
        "upload_types",
        "files",
        "conf",
        "schedule",
        "signals",
        "durations",
    )
]


def module_name(path, root):
    """Return the dotted name of the module at ``path`` in the package folder ``root``."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(root):
    """Return ``{module: {module it imports}}`` for every module of the package at ``root``.

    Only imports of the package's own modules count. ``from package import name`` leads to the
    module ``package.name`` when there is one, else to ``package``; a relative import is resolved
    against the importing module's package.
    """
    files = {module_name(path, root): path for path in sorted(root.rglob("*.py"))}
    graph = {}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets.update(
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                    for alias in node.names
                )
        graph[module] = {target for target in targets if target in files and target != module}
    return graph


def cycles(graph):
    """Return the import cycles of ``graph``: each a sorted list of the modules that import each other."""
    found, reached, on_path = [], {}, []

    def visit(module):
        # Tarjan's strongly connected components; a component of two modules or more is a cycle.
        reached[module] = low = len(reached)
        on_path.append(module)
        for target in sorted(graph[module]):
            if target not in reached:
                low = min(low, visit(target))
            elif target in on_path:
                low = min(low, reached[target])
        if low == reached[module]:
            component = on_path[on_path.index(module) :]
            del on_path[on_path.index(module) :]
            if len(component) > 1:
                found.append(sorted(component))
            for member in component:
                reached[member] = len(graph)  # finished: never lowers another's link again
        return low

    for module in sorted(graph):
        if module not in reached:
            visit(module)
    return found


def reachable(graph, start):
    """Return every module that importing ``start`` imports, directly or through others."""
    seen, pending = set(), [start]
    while pending:
        for target in graph[pending.pop()]:
            if target not in seen:
                seen.add(target)
                pending.append(target)
    return seen


def in_part(module, part):
    """Return True if ``module`` is the module or package ``part``, or lies in it."""
    return module == part or module.startswith(part + ".")


def is_face(module):
    """Return True for a module of the faces: the admin, the commands, cron, the checks, alerts, metrics..."""
    return module.startswith("media_app.admin") or any(in_part(module, face) for face in FACES)


def test_media_app_has_no_import_cycle():
    assert cycles(import_graph(PACKAGE_DIR)) == []


def test_the_sweep_never_imports_a_face():
    graph = import_graph(PACKAGE_DIR)

    reached = {
        module: sorted(target for target in reachable(graph, module) if is_face(target))
        for module in graph
        if in_part(module, SWEEP)
    }

    assert {module: faces for module, faces in reached.items() if faces} == {}


def test_the_model_the_rules_and_the_normal_path_never_import_the_sweep():
    graph = import_graph(PACKAGE_DIR)

    reached = {
        module: sorted(target for target in reachable(graph, module) if in_part(target, SWEEP))
        for module in BELOW_THE_SWEEP
    }

    assert {module: sweep for module, sweep in reached.items() if sweep} == {}


def test_the_reader_sees_relative_imports_and_imports_inside_functions(tmp_path):
    """The rules above hold only if the reader misses no import: a circle made by hand is found."""
    package = tmp_path / "shop"
    (package / "parts").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "parts/__init__.py").write_text("from .wheel import Wheel\n")
    (package / "parts/wheel.py").write_text("def make():\n    from ..orders import order\n")
    (package / "orders.py").write_text("from shop.parts import wheel\n")
    (package / "alone.py").write_text("import os\nfrom . import orders\n")

    graph = import_graph(package)

    assert graph == {
        "shop": set(),
        "shop.parts": {"shop.parts.wheel"},
        "shop.parts.wheel": {"shop.orders"},
        "shop.orders": {"shop.parts.wheel"},
        "shop.alone": {"shop.orders"},
    }
    assert cycles(graph) == [["shop.orders", "shop.parts.wheel"]]
    assert reachable(graph, "shop.alone") == {"shop.orders", "shop.parts.wheel"}
