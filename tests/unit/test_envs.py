"""Every conda environment (envs/*.yaml, used with `snakemake --sdm conda`) lists each package the
scripts of its rules import: the script's own imports, those of every ftscale module it reaches
(lazy imports inside functions too), the job functions it hands the warm worker by name, and the
modules the worker preloads. Read from the sources (ast), so it runs offline without conda."""

import ast
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
DISTRIBUTION = {
    "yaml": "pyyaml",
    "rouge_score": "rouge-score",
    "mlflow": "mlflow-skinny",
}  # import name -> pip name, where they differ
OPTIONAL = ("ImportError", "ModuleNotFoundError")  # a try: import ... except these is optional
JOB_TARGET = re.compile(r"ftscale(\.\w+)+:\w+")  # worker.run("module:function", ...)


def module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.exists()), None)


def optional_nodes(tree: ast.AST) -> set[int]:
    caught = lambda h: {getattr(e, "id", None) for e in (h.type.elts if isinstance(h.type, ast.Tuple) else [h.type])}
    return {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.Try) and any(caught(h) & set(OPTIONAL) for h in node.handlers if h.type is not None)
        for stmt in node.body
        for n in ast.walk(stmt)
    }


def preloaded(tree: ast.AST) -> set[str]:
    """A PRELOAD tuple (ftscale.runtime.worker's): modules its server imports, so the job's environment needs them."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PRELOAD" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return set()


def imported_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    skip = optional_nodes(tree)
    names = preloaded(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module} | {
                f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}")
            }
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and JOB_TARGET.fullmatch(node.value):
            names.add(node.value.split(":")[0])
    return names


def third_party_imports(script: Path) -> set[str]:
    """Top-level names of the non-stdlib packages a script needs, following ftscale's modules."""
    packages, seen, todo = set(), set(), [script]
    while todo:
        for name in imported_names(todo.pop()):
            top = name.split(".")[0]
            if top == "ftscale":
                path = module_file(name)
                if path and path not in seen:
                    seen.add(path)
                    todo.append(path)
            elif top not in sys.stdlib_module_names and top != "__future__":
                packages.add(top)
    return packages


def rule_environments() -> dict[str, str]:
    """script file -> conda env file, from every rule (or rule in a loop) that has both."""
    pairs = {}
    for smk in (ROOT / "rules").glob("*.smk"):
        for block in re.split(r"\n\s*rule\b", smk.read_text()):
            env = re.search(r"conda:\s*\n\s*\"\.\./(envs/[\w.]+)\"", block)
            script = re.search(r"script:\s*\n\s*\"\.\./(scripts/[\w.]+)\"", block)
            if env and script:
                assert pairs.setdefault(script.group(1), env.group(1)) == env.group(1), script.group(1)
    return pairs


def listed_packages(env_file: Path) -> set[str]:
    """Package names an environment file lists, conda's and pip's, without versions."""
    listed = set()
    for item in yaml.safe_load(env_file.read_text())["dependencies"]:
        for entry in item["pip"] if isinstance(item, dict) else [item]:
            listed.add(re.split(r"[=<>!~ \[]", entry, maxsplit=1)[0].lower().replace("_", "-"))
    return listed


def missing_packages(script: Path, env_file: Path) -> list[str]:
    needed = {DISTRIBUTION.get(top, top).lower().replace("_", "-") for top in third_party_imports(script)}
    return sorted(needed - listed_packages(env_file))


RULE_ENVS = rule_environments()


def test_every_script_of_a_rule_has_an_environment():
    assert set(RULE_ENVS) == {f"scripts/{p.name}" for p in (ROOT / "scripts").glob("*.py")}


@pytest.mark.parametrize("script", sorted(RULE_ENVS))
def test_the_environment_lists_every_package_the_script_imports(script):
    env = RULE_ENVS[script]
    assert missing_packages(ROOT / script, ROOT / env) == [], f"{env} lacks what {script} imports"


def test_a_package_imported_deep_down_or_preloaded_by_the_worker_counts(tmp_path):
    env = tmp_path / "env.yaml"
    env.write_text("dependencies:\n  - python=3.11\n  - pip:\n      - numpy==2.4.6\n      - torch==2.13.0\n")
    script = tmp_path / "job.py"
    script.write_text('from ftscale.runtime import worker\nworker.run("ftscale.train.finetune:finetune")\n')
    missing = missing_packages(script, env)
    assert {"pandas", "peft", "transformers", "rouge-score", "sacrebleu"} <= set(missing)  # worker + finetune
    assert "numpy" not in missing and "torch" not in missing


PIP_VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)\}")  # the ${NAME} that pip expands in requirements


@pytest.mark.parametrize("env_file", sorted((ROOT / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_each_environment_installs_ftscale_from_the_checkout_the_workflow_sets(env_file):
    """The pip entry `-e ${FTSCALE_ROOT}`, expanded as pip does with the value rules/common.smk sets
    (workflow.basedir, the repository), is an editable install of this project."""
    common = (ROOT / "rules" / "common.smk").read_text()
    variable = re.search(r'os\.environ\["(\w+)"\] = workflow\.basedir', common).group(1)
    entries = [
        e
        for item in yaml.safe_load(env_file.read_text())["dependencies"]
        if isinstance(item, dict)
        for e in item["pip"]
        if e.startswith("-e ")
    ]
    assert len(entries) == 1, entries
    path = Path(PIP_VARIABLE.sub(lambda m: {variable: str(ROOT)}[m.group(1)], entries[0][3:].strip()))
    assert path == ROOT and 'name = "ftscale"' in (path / "pyproject.toml").read_text()


def test_no_script_or_rule_edits_sys_path():
    """ftscale is installed (pip install -e . or the conda envs), so jobs import it as any package."""
    files = [*(ROOT / "scripts").glob("*.py"), *(ROOT / "rules").glob("*.smk"), ROOT / "Snakefile"]
    assert [str(p.relative_to(ROOT)) for p in files if "sys.path" in p.read_text()] == []
