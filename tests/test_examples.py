"""The chapter's examples run and print the accuracies they should reach."""
import pathlib
import re
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

# example -> (pattern of the printed figure, the least it must be)
EXPECT = {
    "pixel_similarity.py": (r"overall (\d\.\d+)", 0.93),
    "linear1_manual.py": (r"BasicOptim \+ nn.Linear accuracy (\d\.\d+)", 0.96),
    "simple_net.py": (r"x.max\(0.0\)\): accuracy (\d\.\d+)", 0.97),
}


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="examples/ is not shipped in the wheel")
@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_example_runs(name):
    out = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    if name in EXPECT:
        pattern, least = EXPECT[name]
        figure = float(re.search(pattern, out.stdout).group(1))
        assert figure >= least, out.stdout
    if name == "sgd_quadratic.py":
        first, last = map(float, re.search(r"loss ([\d.]+) -> ([\d.]+)", out.stdout).groups())
        assert last < first / 3
