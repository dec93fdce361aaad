"""The README's train command (examples/quickstart.py) runs end to end, on a tiny budget."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--steps", "300"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "sparse_sac_pendulum.zip").exists()
    assert "sparsity 0.50" in result.stdout
    assert "mean return over 5 episodes" in result.stdout
