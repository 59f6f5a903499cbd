#!/usr/bin/env bash
# Set up a virtual environment from scratch and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export LITELLM_LOCAL_MODEL_COST_MAP=True
# Browser tests drive Debian's Chromium (never a browser downloaded by a test tool).
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium >/dev/null
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[compile,train,eval,test,draft,ray,lsp]'
# The VS Code extension's packaging tools (kept in editors/vscode/node_modules between runs).
if command -v npm >/dev/null 2>&1; then
  (cd editors/vscode && { [ -d node_modules ] || npm ci --no-audit --no-fund --silent; })
fi
# pytest exits 5 when it collects no tests; with `set -e` that fails the run too.
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
