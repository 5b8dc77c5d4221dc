#!/usr/bin/env bash
# Bench-only environment with llama-cpp-python, the reference our kernels are measured against.
# Kept out of .venv (and so out of `make install` / `make test`): it compiles llama.cpp from source
# (~12+ min on 2 cores) and nothing in the application imports it.
#
#     nice -n 19 bash bench/llama_cpp_env.sh      # idempotent: returns at once when it already imports
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${KOTATSU_BENCH_VENV:-$PROJECT_DIR/.venv-bench}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
LLAMA_CPP_PYTHON_VERSION="0.3.36"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import llama_cpp, numpy" 2>/dev/null; then
	echo "$VENV already has llama-cpp-python"
	exit 0
fi

test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
# Not GGML_NATIVE: the build must say which instructions it uses, so the comparison with our kernels is
# the same on every machine of this kind. AMX is off: these CPUs have AVX-512 VNNI/BF16 but no AMX.
# One build job: the machine's 2 cores are shared with other work.
CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF" \
CMAKE_BUILD_PARALLEL_LEVEL=1 \
	"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir \
	"llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" numpy
"$VENV/bin/python" -c "import llama_cpp; print('llama-cpp-python', llama_cpp.__version__, 'in', '$VENV')"
