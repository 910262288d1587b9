"""Runs the fuzz suite (fuzz_kernels.py, fuzz_nchw.py, fuzz_tensor.py) in a child
interpreter, so that a crash (a segfault or abort in the C extension) fails
this test instead of killing the test run. The long run is one command:

    FUZZ_EXAMPLES=20000 pytest tests/test_fuzz.py
"""
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def test_fuzz_suite_in_a_child_process():
    env = dict(os.environ, FUZZ_EXAMPLES=os.environ.get("FUZZ_EXAMPLES", "400"))
    out = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "fuzz_kernels.py", "fuzz_nchw.py", "fuzz_tensor.py"], cwd=HERE, env=env,
        capture_output=True, text=True, timeout=3000)
    tail = (out.stdout + out.stderr)[-6000:]
    assert out.returncode >= 0, f"the interpreter crashed (signal {-out.returncode}):\n{tail}"
    assert out.returncode == 0, tail
    assert " passed" in out.stdout and " failed" not in out.stdout, tail
