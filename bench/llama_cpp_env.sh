#!/usr/bin/env bash
# Bench-only environment with llama-cpp-python, the reference our kernels are measured against.
# Kept out of .venv (and so out of `make install` / `make test`): it compiles llama.cpp from source
# (~12+ min on 2 cores the first time) and nothing in the application imports it.
#
#     nice -n 19 bash bench/llama_cpp_env.sh      # idempotent: returns at once when it already imports
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${KOTATSU_BENCH_VENV:-$PROJECT_DIR/.venv-bench}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
LLAMA_CPP_PYTHON_VERSION="0.3.36"

# Not GGML_NATIVE (a native build crashed here): the build names the instructions it uses, those this CPU has,
# so the comparison with our kernels is the same on every machine of this kind. Machines of one kind differ
# (AVX-512 with VNNI and BF16 on some, AVX2 only on others), and a build for the wrong one dies of SIGILL, so
# the flags are read from /proc/cpuinfo and recorded beside the build. AMX is off: none of them has it.
cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo) "
has() { [[ "$cpu_flags" == *" $1 "* ]] && echo ON || echo OFF; }
CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=$(has avx) -DGGML_AVX2=$(has avx2) -DGGML_FMA=$(has fma) -DGGML_F16C=$(has f16c)"
CMAKE_ARGS+=" -DGGML_AVX512=$(has avx512f) -DGGML_AVX512_VNNI=$(has avx512_vnni) -DGGML_AVX512_BF16=$(has avx512_bf16)"
CMAKE_ARGS+=" -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF"
STAMP="$VENV/llama-cpp-build-flags"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import llama_cpp, numpy" 2>/dev/null \
	&& [ "$(cat "$STAMP" 2>/dev/null)" = "$CMAKE_ARGS" ]; then
	echo "$VENV already has llama-cpp-python built with: $CMAKE_ARGS"
	exit 0
fi

test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
# One build job: the machine's 2 cores are shared with other work.
CMAKE_ARGS="$CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL=1 \
	"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir --force-reinstall --no-deps \
	"llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" numpy
echo "$CMAKE_ARGS" > "$STAMP"
"$VENV/bin/python" -c "import llama_cpp; print('llama-cpp-python', llama_cpp.__version__, 'in', '$VENV, built with: $CMAKE_ARGS')"
