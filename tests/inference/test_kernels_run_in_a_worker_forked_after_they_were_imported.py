"""A Celery prefork worker imports the engine's kernels in its main process and then forks its pool children; a
child's first kernel call must compute, not be killed by numba's GNU OpenMP threading layer (which kills a forked
child whose parent had started its threads: every LLM summary in a worker died that way)."""
import subprocess
import sys
import textwrap

from tests.conftest import PROJECT_DIR

CHILD_COMPUTES_AFTER_FORK = textwrap.dedent("""
    import multiprocessing
    import numpy as np
    from gguf import GGMLQuantizationType
    from gguf.quants import quantize
    from inference.core import kernels
    from inference.core.quantized import QuantMatrix

    def child(queue):
        weights = np.random.default_rng(0).standard_normal((64, 256)).astype(np.float32)  # [rows, cols]
        packed = quantize(weights, GGMLQuantizationType.Q8_0)
        w = QuantMatrix.from_gguf_bytes(GGMLQuantizationType.Q8_0, (64, 256), packed.reshape(-1))
        x = np.ones((1, 256), np.float32)  # [T, cols]
        queue.put(float(np.abs(kernels.matmul(x, w) - kernels.reference_matmul(x, w)).max()))  # [T, rows]

    queue = multiprocessing.get_context("fork").SimpleQueue()
    worker = multiprocessing.get_context("fork").Process(target=child, args=(queue,))
    worker.start()
    worker.join(120)
    print(worker.exitcode, queue.get() if worker.exitcode == 0 else None)
""")


def test_a_child_forked_after_the_kernels_were_imported_computes_with_them():
    done = subprocess.run([sys.executable, "-c", CHILD_COMPUTES_AFTER_FORK], cwd=PROJECT_DIR, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    exit_code, error = done.stdout.split()
    assert exit_code == "0", done.stderr
    assert float(error) < 1e-3
    assert "Terminating" not in done.stderr
