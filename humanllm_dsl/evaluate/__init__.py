"""Evaluation: role-play rollouts, the dual-level checklist judge (IPE / MPD), holistic scores,
human alignment, DSPy optimisation of the judge and the generation programs, and reports.

Modules (import what you need; nothing here imports torch, scipy or matplotlib at import time):

- `data`: read a compiled build folder into evaluation samples (one per scenario and target character)
- `lms`: LM construction and plain chat calls
- `rollout`: the evaluated model plays each target character
- `judge`: checklist and holistic judging, verdict parsing, retries, failures
- `scores`: IPE / MPD / holistic aggregation and breakdowns
- `run`: `humanllm eval` end to end (resumable stores)
- `results`: results.json, scores.csv and the report's examples from the stores
- `align`: agreement between human and judge scores
- `report`: report.html with PNG plots
- `optimize`: DSPy optimisers for the judge and the generation programs
"""
