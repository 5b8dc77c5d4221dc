"""The apps' layering (assistant > ingest > inference, and the Django-free engine) is checked by import-linter."""
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root):
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300)


def test_every_layering_contract_is_kept():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_upward_import_breaks_the_layering(tmp_path):
    copy = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("assistant", "ingest", "inference"):
        shutil.copytree(REPO / package, copy / package, ignore=ignore)
    shutil.copy(REPO / ".importlinter", copy / ".importlinter")
    core_module = copy / "inference" / "core" / "sampling.py"
    core_module.write_text(core_module.read_text() + "\nfrom ingest import models  # an upward import\n")

    result = lint_imports(copy)

    assert result.returncode != 0
    assert "inference.core.sampling -> ingest.models" in result.stdout
