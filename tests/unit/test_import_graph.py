"""No import cycle among the modules of src/ftscale, counting every import a module makes (at its
top and inside its functions: a lazy import is still a dependency, only a deferred one)."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def module_name(path: Path, src: Path) -> str:
    parts = path.relative_to(src).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST, modules: set[str]) -> set[str]:
    """The package's modules `tree` imports: `import a.b`, `from a import b` (b a module or a name
    of a), `from a.b import name`."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{alias.name}" for alias in node.names} | {node.module}
    # a package's own __init__ is imported with any of its modules; it is not a dependency edge
    return {name for name in found if name in modules and "." in name}


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    files = {module_name(path, src): path for path in src.rglob("*.py")}
    return {name: imported_modules(ast.parse(path.read_text()), set(files)) - {name} for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search, white/grey/black)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "grey"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "grey":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = "black"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "ftscale.data.sources" in graph and "ftscale.cli" in graph  # the walk found the package
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_a_lazy_import_that_closes_a_loop_is_found(tmp_path):
    package = tmp_path / "ftscale"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from ftscale import b\n")
    (package / "b.py").write_text("def f():\n    from ftscale.a import g\n")
    (package / "c.py").write_text("import ftscale.a\n")
    assert find_cycle(import_graph(tmp_path)) == ["ftscale.a", "ftscale.b", "ftscale.a"]
    (package / "b.py").write_text("def f():\n    import json\n")
    assert find_cycle(import_graph(tmp_path)) is None


# The stages' packages and the top-level modules, lowest first: a module may import its own layer
# and the layers before it, never a later one (the workflow's direction: a job's runtime knows no
# stage; training knows no evaluation; the analysis knows no figure; the planner counts tokens in the
# data's prompt format).
LAYERS = ["runtime", "data", "plan", "config", "train", "evaluate", "fitting", "outputs", "analysis", "figures", "cli"]


def layer_of(module: str) -> str:
    """`ftscale.train.model` -> train; `ftscale.config` -> config."""
    return module.split(".")[1]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module != "ftscale"
        for target in targets
        if rank[layer_of(target)] > rank[layer_of(module)]
    )


def test_every_module_belongs_to_a_layer():
    assert {layer_of(module) for module in import_graph() if module != "ftscale"} == set(LAYERS)


def test_no_module_imports_a_later_stage():
    assert upward_imports(import_graph()) == []


def test_an_upward_import_is_found(tmp_path):
    package = tmp_path / "ftscale"
    for sub in ("train", "evaluate"):
        (package / sub).mkdir(parents=True)
        (package / sub / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "evaluate" / "decode.py").write_text("from ftscale.train import model\n")
    (package / "train" / "model.py").write_text("def f():\n    from ftscale.evaluate import decode\n")
    found = upward_imports(import_graph(tmp_path))
    assert "ftscale.train.model -> ftscale.evaluate.decode" in found
    assert all(edge.startswith("ftscale.train.model -> ") for edge in found)  # decode's import is downward
