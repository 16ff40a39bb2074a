"""gan_jax's modules in declared layers (foundation, data, maths, feed, tasks, driver, front ends):
none imports a higher layer, and none closes an import circle.

The graph is read from the source with `ast`, so a circle shows even where Python would get by
(a lazy import inside a function, an import of a half-initialized module)."""

import ast
import pathlib

import gan_jax

ROOT = pathlib.Path(gan_jax.__file__).parent


def _name(root: pathlib.Path, path: pathlib.Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _packages(name: str) -> set[str]:
    """`a.b.c` → {'a', 'a.b'}: the packages Python initializes before importing `name`."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def import_graph(root: pathlib.Path) -> dict[str, set[str]]:
    """Each module of the package at `root` → the modules of that package it imports.

    Every import statement counts, at module level or inside a function (a lazy import still
    closes a circle). `from p import x` imports module `p.x` where `x` is a submodule, else `p`.
    Importing `p.q.m` also runs the packages `p`, `p.q` (their `__init__`), except those the
    importer lies inside: a package's `__init__` importing its children, and the children
    importing each other by full name, is no circle.
    """
    paths = {_name(root, path): path for path in sorted(root.rglob("*.py"))}
    graph = {}
    for name, path in paths.items():
        own = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: `from . import x`, `from ..p import x`
                    parent = own.split(".")[: len(own.split(".")) - node.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                imported.update(
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in paths else base
                    for alias in node.names
                )
        inside = _packages(name) | {own}
        for module in set(imported):
            imported |= _packages(module) - inside
        graph[name] = {module for module in imported if module in paths and module != name}
    return graph


def import_cycle(root: pathlib.Path) -> list[str] | None:
    """One import circle among the modules at `root` (`[a, b, ..., a]`), or None."""
    graph, done, stack = import_graph(root), set(), []

    def visit(name: str) -> list[str] | None:
        stack.append(name)
        for module in sorted(graph[name]):
            if module in stack:
                return stack[stack.index(module) :] + [module]
            if module not in done and (cycle := visit(module)):
                return cycle
        done.add(stack.pop())
        return None

    for name in sorted(graph):
        if name not in done and (cycle := visit(name)):
            return cycle
    return None


# gan_jax's layers, lowest first: a module imports only modules of its own layer or lower ones
# (a name covers the module or package and everything under it). docs/layout.md lists them.
LAYERS = {
    "foundation": (
        "errors",
        "logs",
        "devices",
        "process",
        "workdir",
        "metrics",
        "plots",
        "collapse",
        "tensorboard",
        "checkpoint",
        "multihost",
        "launch",
        "best",
        "onednn",
    ),
    "data": ("data",),
    "maths": ("losses", "models", "config", "steps", "parallel", "features"),
    "feed": ("feed", "stream"),
    "tasks": ("tasks", "classify", "evaluate"),
    "driver": ("actions", "loop"),
    "front ends": ("api", "sweep", "bench", "cli", "cli_options", "gan_jax"),
}


def layer_of(module: str) -> int:
    """Index in `LAYERS` of a module of gan_jax (KeyError: a module no layer names)."""
    short = module.removeprefix("gan_jax.")
    for index, names in enumerate(LAYERS.values()):
        if any(short == name or short.startswith(name + ".") for name in names):
            return index
    raise KeyError(f"{module} is in no layer of tests/test_layering.py's LAYERS; add it to one")


def test_each_module_imports_only_its_own_layer_or_lower_ones_and_no_circle():
    graph = import_graph(ROOT)
    upward = [
        f"{name} ({list(LAYERS)[layer_of(name)]}) imports {module} "
        f"({list(LAYERS)[layer_of(module)]})"
        for name in sorted(graph)
        for module in sorted(graph[name])
        if layer_of(module) > layer_of(name)
    ]
    assert not upward, "; ".join(upward)
    cycle = import_cycle(ROOT)  # within a layer, a circle is still possible
    assert cycle is None, "import circle: " + " → ".join(cycle)
    # the data layer never reaches the configs
    assert layer_of("gan_jax.data.sources.npz") < layer_of("gan_jax.config")


def test_the_cycle_check_finds_lazy_and_package_circles_only(tmp_path):
    root = tmp_path / "pkg"
    files = {
        "__init__.py": "from pkg import top\n",
        "top.py": "from pkg.sub import thing\nfrom . import low\n",
        "low.py": "import os\n",
        "sub/__init__.py": "from pkg.sub.a import thing\nfrom . import c\n",
        "sub/a.py": "from pkg.sub.c import helper\nthing = helper\n",
        "sub/c.py": "def helper():\n    pass\n",
    }
    for file, text in files.items():
        (root / file).parent.mkdir(parents=True, exist_ok=True)
        (root / file).write_text(text)
    graph = import_graph(root)
    assert graph["pkg.top"] == {"pkg.sub", "pkg.low"} and graph["pkg.sub.a"] == {"pkg.sub.c"}
    assert import_cycle(root) is None  # packages importing their children, children each other
    (root / "sub/c.py").write_text("def helper():\n    from pkg import top\n")  # lazy: a circle
    assert import_cycle(root) == ["pkg.top", "pkg.sub", "pkg.sub.a", "pkg.sub.c", "pkg.top"]
    (root / "sub/c.py").write_text("def helper():\n    pass\n")
    (root / "low.py").write_text("from pkg.sub.c import helper\n")  # runs pkg.sub's __init__ first
    (root / "sub/a.py").write_text("from pkg.sub.c import helper\nfrom pkg import low\nthing = 1\n")
    assert import_cycle(root) == ["pkg.low", "pkg.sub", "pkg.sub.a", "pkg.low"]


MAX_FUNCTION_LINES = 60  # issue 37: a function a reader takes in at once


def long_functions(root: pathlib.Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """`module.function (N lines)` for each function or method at `root` longer than `limit`
    lines, its signature and docstring included."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append(f"{_name(root, path)}.{node.name} ({lines} lines)")
    return found


def test_no_function_is_longer_than_sixty_lines(tmp_path):
    assert long_functions(ROOT) == []
    # the check counts the signature and docstring: 60 lines pass, 61 do not
    package = tmp_path / "pkg"
    package.mkdir()
    for name, body_lines in (("short", 58), ("long", 59)):
        body = "\n".join(f"    x{i} = {i}" for i in range(body_lines))
        (package / f"{name}.py").write_text(f'def f():\n    """Doc."""\n{body}\n')
    assert long_functions(package) == ["pkg.long.f (61 lines)"]
