"""Every Snakemake start (a dry run, a no-op rerun, each job's own process) imports what the Snakefile
and rules/*.smk import. Those modules stay light: matplotlib, scipy, torch and transformers cost
seconds each here, and only the jobs that draw, fit or train need them."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("matplotlib", "scipy", "torch", "transformers", "peft")
IMPORT = re.compile(r"^\s*(?:from\s+(ftscale[\w.]*)\s+import\s+([\w ,]+?)\s*(?:#.*)?$|import\s+(ftscale[\w.]*))", re.M)


def workflow_imports() -> list[str]:
    """The ftscale modules (or module.name) imported by the Snakefile and the rules, as `import` lines."""
    lines = []
    for path in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]:
        for source, names, module in IMPORT.findall(path.read_text()):
            lines.append(f"import {module}" if module else f"from {source} import {names}")
    return lines


def test_the_rules_import_ftscale_modules():
    lines = workflow_imports()
    assert any("ftscale.outputs" in line for line in lines) and any("grid" in line for line in lines), lines


def test_what_the_rules_import_leaves_out_matplotlib_scipy_and_torch():
    code = "\n".join(workflow_imports() + ["import sys", f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"])
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.split() == [], f"a Snakemake start imports {out.stdout.strip()}"
