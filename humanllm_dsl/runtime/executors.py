"""Where `compile` and `eval` run their work (`--executor`): the names, for the command line and
the library alike, with nothing heavy imported."""

EXECUTORS = ("local", "ray")  # this machine, or Ray workers (runtime/ray_executor.py, evaluate/ray_eval.py)
