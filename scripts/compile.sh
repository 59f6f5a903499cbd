#!/usr/bin/env bash
# Set up a virtual environment from scratch and run the main job: compile the shipped
# specs into a dataset with the embedded offline engine (no network, no model weights).
set -euo pipefail
cd "$(dirname "$0")/.."
export LITELLM_LOCAL_MODEL_COST_MAP=True
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[compile]'
.venv/bin/humanllm check specs/
.venv/bin/humanllm compile specs/ -o build/ "$@"
