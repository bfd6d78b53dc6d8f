"""The layer contract `make lint` checks holds on this tree and catches an import back up it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root, env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_layers_hold_and_an_import_back_up_the_flow_is_caught(tmp_path: Path) -> None:
    assert _lint(REPO).returncode == 0
    copy = tmp_path / "tree"
    shutil.copytree(
        REPO / "crowdwatch", copy / "crowdwatch", ignore=shutil.ignore_patterns("*.pyc")
    )
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
    # The store reaching up into the pipeline (the cycle the old store feed hid).
    (copy / "crowdwatch" / "store" / "upward.py").write_text(
        "from crowdwatch.pipeline.outputs import RunOutputs\n"
    )
    result = _lint(copy)
    assert result.returncode != 0
    assert "crowdwatch.store.upward -> crowdwatch.pipeline.outputs" in result.stdout
