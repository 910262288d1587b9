"""MINIGRAD_NUM_THREADS and MINIGRAD_SIMD: good values are applied at import;
a bad one never breaks the import, falls back to the default, is listed by
environment_problems() and warned of once, at the first kernel call."""
import ast
import os
import subprocess
import sys
import tempfile

import pytest

PROBE = """
import warnings
import numpy as np
from minigrad import kernels as K
print(K.get_num_threads(), K.simd_path())
print(K.environment_problems())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    K.relu(np.ones(3, np.float32))
    K.matmul(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32))
print([str(w.message) for w in caught], {w.category.__name__ for w in caught})
"""


def _python(code, clear=("MINIGRAD_",), **env):
    """The output of ``code`` in a child interpreter, with the variables
    starting with ``clear`` removed from this environment and ``env`` added."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(clear)}
    # away from the checkout, whose uncompiled minigrad/ would shadow the installed one
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(environ, **env), check=True, timeout=120,
                          cwd=tempfile.gettempdir())


def _probe(**env):
    out = _python(PROBE, **env)
    threads, simd = out.stdout.splitlines()[0].split()
    problems, warned = out.stdout.splitlines()[1:3]
    return int(threads), simd, ast.literal_eval(problems), warned


def test_default_environment_has_no_problems():
    threads, simd, problems, warned = _probe()
    assert threads == len(os.sched_getaffinity(0)) and problems == []
    assert warned == "[] set()"


def test_good_values_are_applied():
    threads, simd, problems, _ = _probe(MINIGRAD_NUM_THREADS="3", MINIGRAD_SIMD="generic")
    assert (threads, simd, problems) == (3, "generic", [])


@pytest.mark.parametrize("value", ["abc", "0", "-3", "2.5", str(4 * os.cpu_count() + 1)])
def test_bad_thread_count_falls_back_and_warns_once(value):
    threads, _, problems, warned = _probe(MINIGRAD_NUM_THREADS=value)
    bound = 4 * len(os.sched_getaffinity(0))
    assert threads == len(os.sched_getaffinity(0))
    assert len(problems) == 1
    assert problems[0].startswith("MINIGRAD_NUM_THREADS must be an integer from 1 to "
                                  f"{bound}") and repr(value) in problems[0]
    assert warned.count("MINIGRAD_NUM_THREADS") == 1 and "RuntimeWarning" in warned


def test_bad_simd_path_falls_back_and_warns_once():
    from minigrad import kernels as K

    _, simd, problems, warned = _probe(MINIGRAD_SIMD="sse9", MINIGRAD_NUM_THREADS="x")
    assert simd == K.simd_paths_available()[-1]
    assert len(problems) == 2 and "MINIGRAD_SIMD must be one of" in problems[1]
    assert ", ".join(K.simd_paths_available()) in problems[1] and "'sse9'" in problems[1]
    assert warned.count("MINIGRAD_SIMD") == 1 and warned.count("MINIGRAD_NUM_THREADS") == 1


SMALLER_TEAM = """
import numpy as np
from minigrad import kernels as K
rng = np.random.default_rng(0)
a = rng.standard_normal((300, 400)).astype(np.float32)
b = rng.standard_normal((400, 500)).astype(np.float32)
x = rng.standard_normal((256, 784)).astype(np.float32)
w = rng.standard_normal((30, 784)).astype(np.float32)
x8 = rng.integers(0, 256, (256, 784), dtype=np.uint8)
products = [lambda: K.matmul(a, b), lambda: K.matmul(b, b.T),         # rows, columns
            lambda: K.linear(x, w, None, trans_w=True),               # private B panels
            lambda: K.matmul(x[:, :128], x8, trans_a=True, scale=255.0)]
same = []
for f in products:
    K.set_num_threads(1)
    one = f()
    K.set_num_threads(3)
    same.append(bool(np.array_equal(f(), one)))
print(same)
"""


@pytest.mark.parametrize("limit", [{"OMP_THREAD_LIMIT": "1"}, {"OMP_DYNAMIC": "true"}])
def test_gemm_is_whole_when_openmp_grants_fewer_threads(limit):
    """The GEMM cuts its work for the threads it asked for: a smaller team
    (OMP_THREAD_LIMIT, or OMP_DYNAMIC on a busy machine) left tiles unwritten
    (NaN and garbage) until one thread took the whole product."""
    out = _python(SMALLER_TEAM, clear=("MINIGRAD_", "OMP_"), **limit)
    assert out.stdout.strip() == "[True, True, True, True]", out.stdout + out.stderr


RUNTIME_FIRST = """
import ctypes
import os
import warnings
import numpy as np
if os.environ.get("LOAD_FIRST"):
    try:
        ctypes.CDLL("libgomp.so.1")  # another library's OpenMP runtime, loaded before minigrad
    except OSError:
        print("no libgomp.so.1")
        raise SystemExit(0)
from minigrad import _openmp
from minigrad import kernels as K
print(K.environment_problems())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    K.relu(np.ones(3, np.float32))
    K.relu(np.ones(3, np.float32))
print([str(w.message) for w in caught])
print(sorted(os.path.basename(p) for p in _openmp.runtimes()))
"""


def _runtime_first(**env):
    """(problems, warnings, basenames of the mapped OpenMP runtimes) of a child
    without GOMP_SPINCOUNT in its environment unless ``env`` sets it."""
    out = _python(RUNTIME_FIRST, clear=("MINIGRAD_", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY"),
                  **env)
    if out.stdout.startswith("no libgomp.so.1"):
        pytest.skip("no libgomp.so.1 on this system to load first")
    return [ast.literal_eval(line) for line in out.stdout.splitlines()[:3]]


def test_openmp_runtime_loaded_first_is_a_problem_warned_once():
    """A source build links libgomp.so.1 and shares the copy another library
    (PyTorch) loaded first, which read the environment before minigrad's
    import set GOMP_SPINCOUNT: listed, and warned of once."""
    from minigrad import kernels as K

    _, _, own = _runtime_first()
    if not K.openmp_enabled() or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("no OpenMP team on this build or machine")
    if not any(name.startswith("libgomp.so") for name in own):
        pytest.skip(f"this build brings its own OpenMP runtime ({own}): nothing is shared")
    problems, warned, runtimes = _runtime_first(LOAD_FIRST="1")
    assert runtimes == own
    assert len(problems) == 1 and problems[0].startswith("GOMP_SPINCOUNT: the OpenMP runtime /")
    assert "import minigrad before the library that loaded it" in problems[0]
    assert len(warned) == 1 and warned[0] == f"minigrad: {problems[0]}"


@pytest.mark.parametrize("policy", [{"GOMP_SPINCOUNT": "10000"}, {"OMP_WAIT_POLICY": "passive"}])
def test_openmp_runtime_loaded_first_with_a_wait_policy_set_is_no_problem(policy):
    problems, warned, _ = _runtime_first(LOAD_FIRST="1", **policy)
    assert problems == [] and warned == []


def test_openmp_runtime_of_minigrads_own_import_is_no_problem():
    problems, warned, _ = _runtime_first()
    assert problems == [] and warned == []


@pytest.mark.parametrize("env,spin", [({}, "10000"), ({"GOMP_SPINCOUNT": "5"}, "5"),
                                      ({"OMP_WAIT_POLICY": "passive"}, None)])
def test_import_sets_the_spin_count_unless_a_wait_policy_is_set(env, spin):
    """libgomp lets GOMP_SPINCOUNT override OMP_WAIT_POLICY: a policy of the
    user's own must not get minigrad's spin count."""
    out = _python("import os, minigrad; print(repr(os.environ.get('GOMP_SPINCOUNT')))",
                  clear=("MINIGRAD_", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY"), **env)
    assert ast.literal_eval(out.stdout.strip()) == spin
