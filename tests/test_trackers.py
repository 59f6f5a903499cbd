"""`--report-to`: train passes the tracker to TRL's SFTConfig; eval logs its numbers with the
tracker's library; a tracker whose package is missing is a clear error before any work."""

import argparse
import importlib.util
from pathlib import Path

import pytest

from humanllm_dsl import trackers
from humanllm_dsl.cli import main
from humanllm_dsl.cli.train import add_commands, resolve


def _train_args(*extra):
    sub = argparse.ArgumentParser().add_subparsers()
    add_commands(sub)
    return sub.choices["train"].parse_args(["build", "--model", "m", "-o", "out", *extra])


def test_train_passes_the_tracker_to_trl():
    from humanllm_dsl.train.trainer import sft_kwargs

    cfg = resolve(_train_args("--report-to", "tensorboard", "--precision", "fp32"))
    assert cfg.report_to == "tensorboard"
    assert sft_kwargs(cfg, False, False)["report_to"] == "tensorboard"
    assert resolve(_train_args("--precision", "fp32")).report_to == "none"


def test_a_missing_tracker_package_is_named(tmp_path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(trackers.TrackerError, match=r"--report-to wandb needs the `wandb` package.*pip install wandb"):
        trackers.require("wandb")
    (tmp_path / "build" / "sft").mkdir(parents=True)
    (tmp_path / "build" / "sft" / "messages_train.jsonl").write_text(
        '{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}, '
        '{"role": "assistant", "content": "a"}]}\n')
    code = main(["train", str(tmp_path / "build"), "--model", "m", "-o", str(tmp_path / "o"), "--report-to", "wandb"])
    assert code == 2 and "needs the `wandb` package" in capsys.readouterr().err


def test_eval_numbers_reach_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    results = {"IPE": {"mean": 41.5, "std": 2.0}, "holistic": {"fidelity": {"mean": 70}}, "model": "offline",
               "samples": 12, "ok": True}
    metrics = trackers.flat_metrics(results)
    assert metrics == {"IPE/mean": 41.5, "IPE/std": 2.0, "holistic/fidelity/mean": 70.0, "samples": 12.0}
    trackers.log_metrics("tensorboard", tmp_path, metrics, run_name="eval")
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    logged = {tag: float(events.Tensors(tag)[0].tensor_proto.float_val[0]) for tag in events.Tags()["tensors"]}
    assert logged == metrics
