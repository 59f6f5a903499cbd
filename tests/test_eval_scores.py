"""Aggregation of judge verdicts: IPE / MPD per sample, over samples, over runs; breakdowns."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from humanllm_dsl.evaluate import scores as S

PATTERNS = {"anchoring": {"name": "anchoring", "family": "social_cognitive"},
            "loss_aversion": {"name": "loss aversion", "family": "social_cognitive"},
            "talkative": {"name": "talkative", "family": "trait"}}


def scored(sample, run, ipe=(), mpd=(), split="id_eval", patterns=("anchoring",), interactions=()):
    return S.Scored(sample, run, split, patterns, interactions, tuple(ipe), tuple(mpd))


def test_hand_computed_two_samples_two_runs():
    rows = [
        # run 1: sample a IPE mean (1+0+1)/3 = 2/3, MPD (1-1)/2 = 0; sample b IPE -1, MPD 1
        scored("a", 1, ipe=[("anchoring", 1), ("anchoring", 0), ("anchoring", 1)], mpd=[1, -1]),
        scored("b", 1, ipe=[("anchoring", -1)], mpd=[1]),
        # run 2: a IPE 1, MPD 1; b IPE 0, MPD 0
        scored("a", 2, ipe=[("anchoring", 1), ("anchoring", 1), ("anchoring", 1)], mpd=[1, 1]),
        scored("b", 2, ipe=[("anchoring", 0)], mpd=[0]),
    ]
    result = S.summary(rows, [1, 2])
    ipe_runs = [100 * (2 / 3 - 1) / 2, 100 * (1 + 0) / 2]          # -16.67, 50
    mpd_runs = [100 * (0 + 1) / 2, 100 * (1 + 0) / 2]               # 50, 50
    assert result["IPE"]["runs"] == pytest.approx(ipe_runs)
    assert result["IPE"]["mean"] == pytest.approx(sum(ipe_runs) / 2)
    assert result["IPE"]["std"] == pytest.approx(statistics.stdev(ipe_runs))
    assert result["MPD"]["runs"] == pytest.approx(mpd_runs)
    assert result["MPD"]["mean"] == pytest.approx(50.0)
    assert result["MPD"]["std"] == 0.0
    assert result["IPE"]["n"] == result["MPD"]["n"] == 2


def test_per_sample_mean_before_mean_over_samples():
    """A sample with many items weighs as much as a sample with one."""
    rows = [scored("a", 1, ipe=[("anchoring", 1)] * 10), scored("b", 1, ipe=[("anchoring", -1)])]
    assert S.summary(rows, [1])["IPE"]["mean"] == pytest.approx(0.0)


def test_missing_kinds_and_failed_runs_are_left_out():
    rows = [scored("a", 1, ipe=[("anchoring", 1)], mpd=[]),     # no mpd items: no MPD for a
            scored("b", 1, ipe=[("anchoring", 0)], mpd=[-1]),
            scored("a", 3, ipe=[("anchoring", -1)], mpd=[1])]   # run 2 failed everywhere
    result = S.summary(rows, [1, 2, 3])
    assert result["MPD"]["runs"] == [-100.0, 100.0]
    assert result["IPE"]["runs"] == [50.0, -100.0]
    assert result["MPD"]["n"] == 2


def test_no_samples_gives_none():
    result = S.summary([], [1, 2, 3])
    assert result["IPE"] == {"mean": None, "std": None, "runs": [], "n": 0}


def test_one_run_has_zero_std():
    assert S.mean_std([42.0]) == {"mean": 42.0, "std": 0.0, "runs": [42.0]}


def test_pattern_breakdown_counts_only_that_patterns_items():
    rows = [scored("a", 1, patterns=("anchoring", "talkative"),
                   ipe=[("anchoring", 1), ("anchoring", 1), ("talkative", -1)], mpd=[0], interactions=("conflict",)),
            scored("b", 1, patterns=("loss_aversion",), ipe=[("loss_aversion", 0)], mpd=[1], split="ood_eval")]
    b = S.breakdowns(rows, [1], PATTERNS)
    assert b["pattern"]["anchoring"]["IPE"]["mean"] == pytest.approx(100.0)
    assert b["pattern"]["talkative"]["IPE"]["mean"] == pytest.approx(-100.0)
    assert b["pattern"]["talkative"]["MPD"]["mean"] == pytest.approx(0.0)
    assert b["pattern"]["loss_aversion"]["name"] == "loss aversion"
    assert b["family"]["social_cognitive"]["IPE"]["mean"] == pytest.approx((100.0 + 0.0) / 2)
    assert b["family"]["trait"]["IPE"]["mean"] == pytest.approx(-100.0)
    assert b["family"]["trait"]["IPE"]["n"] == 1
    assert b["split"]["id_eval"]["IPE"]["mean"] == pytest.approx(100 * (1 / 3))
    assert b["split"]["ood_eval"]["MPD"]["mean"] == pytest.approx(100.0)
    assert set(b["interaction"]) == {"conflict", "none"}
    assert b["interaction"]["none"]["MPD"]["n"] == 1


def test_holistic_summary():
    rows = [{"sample": "a", "run": 1, "anthropomorphism": 80, "fidelity": 60},
            {"sample": "b", "run": 1, "anthropomorphism": 40, "fidelity": 70},
            {"sample": "a", "run": 2, "anthropomorphism": 70, "fidelity": 65}]
    h = S.holistic_summary(rows, [1, 2])
    assert h["anthropomorphism"]["runs"] == [60.0, 70.0]
    assert h["anthropomorphism"]["mean"] == pytest.approx(65.0)
    assert h["fidelity"]["std"] == pytest.approx(0.0)
    assert h["fidelity"]["n"] == 2


def test_per_sample_means_average_runs():
    rows = [scored("a", 1, ipe=[("anchoring", 1)], mpd=[0]), scored("a", 2, ipe=[("anchoring", 0)], mpd=[0])]
    assert S.per_sample_means(rows) == {"a": {"IPE": 50.0, "MPD": 0.0}}


item_scores = st.lists(st.sampled_from([-1, 0, 1]), min_size=0, max_size=8)


@given(st.lists(st.tuples(item_scores, item_scores), min_size=1, max_size=6), st.integers(1, 4))
def test_scores_stay_in_range_and_identical_runs_have_no_spread(samples, k):
    rows = [scored(f"s{i}", r, ipe=[("anchoring", x) for x in ipe], mpd=mpd)
            for r in range(1, k + 1) for i, (ipe, mpd) in enumerate(samples)]
    result = S.summary(rows, list(range(1, k + 1)))
    for metric in ("IPE", "MPD"):
        entry = result[metric]
        if entry["mean"] is None:
            assert entry["n"] == 0
            continue
        assert -100.0 <= entry["mean"] <= 100.0
        assert entry["std"] == pytest.approx(0.0, abs=1e-9)
        assert len(entry["runs"]) == k


@given(st.lists(st.lists(st.sampled_from([-1, 0, 1]), min_size=1, max_size=5), min_size=1, max_size=6))
def test_flipping_every_verdict_negates_the_score(samples):
    rows = [scored(f"s{i}", 1, mpd=m) for i, m in enumerate(samples)]
    flipped = [scored(f"s{i}", 1, mpd=[-x for x in m]) for i, m in enumerate(samples)]
    a, b = S.summary(rows, [1])["MPD"]["mean"], S.summary(flipped, [1])["MPD"]["mean"]
    assert math.isclose(a, -b, abs_tol=1e-9)


def test_ipe_per_pattern_averaging_weighs_each_pattern_equally():
    from humanllm_dsl.evaluate.scores import Scored, sample_score, summary

    # pattern a: 4 items all +1; pattern b: 1 item -1
    s = Scored("r/x", 1, patterns=("a", "b"), ipe=(("a", 1), ("a", 1), ("a", 1), ("a", 1), ("b", -1)), mpd=(0,))
    assert sample_score(s, "IPE") == pytest.approx(3 / 5)  # pooled: items of all patterns in one mean
    assert sample_score(s, "IPE", average="pattern") == pytest.approx(0.0)  # (1 + -1) / 2
    assert sample_score(s, "MPD", average="pattern") == sample_score(s, "MPD") == 0.0
    assert summary([s], [1], "pattern")["IPE"]["mean"] == pytest.approx(0.0)
    assert summary([s], [1])["IPE"]["mean"] == pytest.approx(60.0)
    with pytest.raises(ValueError, match="pooled, pattern"):
        sample_score(s, "IPE", average="median")
