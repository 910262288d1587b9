"""Runs the readers' fuzz suite (fuzz_readers.py) in a child interpreter under
an address-space cap, so that a crash or an allocation a header talked the
reader into fails this test instead of the test run. The long run:

    FUZZ_READER_EXAMPLES=5000 pytest tests/test_reader_fuzz.py
"""
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def test_reader_fuzz_suite_in_a_child_process():
    env = dict(os.environ,
               FUZZ_READER_EXAMPLES=os.environ.get("FUZZ_READER_EXAMPLES", "150"))
    out = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "fuzz_readers.py"], cwd=HERE, env=env, capture_output=True, text=True, timeout=1800)
    tail = (out.stdout + out.stderr)[-6000:]
    assert out.returncode >= 0, f"the interpreter crashed (signal {-out.returncode}):\n{tail}"
    assert out.returncode == 0, tail
    assert " passed" in out.stdout and " failed" not in out.stdout, tail
