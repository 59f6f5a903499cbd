"""`humanllm align`: statistics against scipy on fixed data, the JSON output, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from humanllm_dsl.cli import main
from humanllm_dsl.evaluate import align as A

HUMAN = [38.0, 45.0, 12.0, 70.0, 55.0, 20.0, 64.0, 33.0, 81.0, 5.0]
JUDGE = [35.0, 50.0, 18.0, 62.0, 58.0, 25.0, 60.0, 30.0, 77.0, 15.0]
HOL_H = [84.0, 90.0, 78.0, 88.0, 80.0]
HOL_J = [50.0, 62.0, 55.0, 40.0, 61.0]


def write(path: Path, rows, header="sample_id,metric,score") -> Path:
    path.write_text(header + "\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    human = [(f"s{i}", "IPE", h) for i, h in enumerate(HUMAN)] + \
            [(f"s{i}", "anthropomorphism", h) for i, h in enumerate(HOL_H)] + [("only_human", "IPE", 1)]
    judge = [(f"s{i}", "IPE", j) for i, j in enumerate(JUDGE)] + \
            [(f"s{i}", "anthropomorphism", j) for i, j in enumerate(HOL_J)] + [("only_judge", "IPE", 2)]
    return write(tmp_path / "human.csv", human), write(tmp_path / "judge.csv", judge)


def test_matches_scipy(files):
    result = A.align_files(*files)
    ipe = result["IPE"]
    assert ipe["n"] == 10
    assert ipe["pearson"] == pytest.approx(stats.pearsonr(HUMAN, JUDGE).statistic)
    assert ipe["spearman"] == pytest.approx(stats.spearmanr(HUMAN, JUDGE).statistic)
    assert ipe["mean_human"] == pytest.approx(np.mean(HUMAN))
    assert ipe["mean_judge"] == pytest.approx(np.mean(JUDGE))
    assert ipe["gap"] == pytest.approx(np.mean(HUMAN) - np.mean(JUDGE))
    lo, hi = ipe["pearson_ci"]
    assert -1 <= lo <= ipe["pearson"] <= hi <= 1
    hol = result["anthropomorphism"]
    assert hol["n"] == 5 and hol["gap"] == pytest.approx(np.mean(HOL_H) - np.mean(HOL_J))
    assert hol["pearson"] == pytest.approx(stats.pearsonr(HOL_H, HOL_J).statistic)


def test_bootstrap_ci_matches_scipy_percentile_bootstrap():
    """Our vectorised bootstrap and scipy's percentile bootstrap agree to within resampling noise."""
    ours = A.bootstrap_ci(HUMAN, JUDGE, resamples=4000, seed=1)
    ref = stats.bootstrap((np.array(HUMAN), np.array(JUDGE)), lambda x, y: stats.pearsonr(x, y).statistic,
                          paired=True, vectorized=False, n_resamples=4000, method="percentile",
                          random_state=np.random.default_rng(1)).confidence_interval
    assert ours[0] == pytest.approx(ref.low, abs=0.05)
    assert ours[1] == pytest.approx(ref.high, abs=0.05)


def test_bootstrap_is_deterministic():
    assert A.bootstrap_ci(HUMAN, JUDGE, seed=3) == A.bootstrap_ci(HUMAN, JUDGE, seed=3)


def test_undefined_correlations_are_none():
    s = A.metric_stats([(1.0, 5.0), (2.0, 5.0), (3.0, 5.0)])
    assert s["pearson"] is None and s["spearman"] is None and s["pearson_ci"] is None
    assert A.metric_stats([(1.0, 2.0)])["pearson"] is None


def test_cli_json(files, capsys):
    assert main(["align", "--human", str(files[0]), "--judge", str(files[1]), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"IPE", "anthropomorphism"}
    for entry in out.values():
        assert {"n", "pearson", "pearson_ci", "spearman", "mean_human", "mean_judge"} == set(entry)
    assert out["IPE"]["pearson"] == pytest.approx(stats.pearsonr(HUMAN, JUDGE).statistic)


def test_cli_table(files, capsys):
    assert main(["align", "--human", str(files[0]), "--judge", str(files[1])]) == 0
    out = capsys.readouterr().out
    assert "pearson" in out and "anthropomorphism" in out


@pytest.mark.parametrize("content, message", [
    ("sample_id,metric\ns1,IPE\n", r"row 1: missing column score"),
    ("id,metric,score\ns1,IPE,3\n", r"row 1: missing column sample_id"),
    ("", r"missing columns sample_id, metric, score \(found: no header row\)"),
    ("sample_id,metric,score\ns1,IPE,3\ns2,IPE,high\n", r"row 3: score 'high' is not a number"),
    ("sample_id,metric,score\ns1,IPE,nan\n", r"row 2: score 'nan' is not a finite number"),
    ("sample_id,metric,score\ns1,IPE,3\n,IPE,4\n", r"row 3: empty sample_id"),
    ("sample_id,metric,score\ns1,IPE,3\ns1,IPE,4\n", r"row 3: .* already given in row 2"),
    ("sample_id,metric,score\n", r"no score rows"),
])
def test_bad_files_name_file_and_row(tmp_path, files, capsys, content, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(content, encoding="utf-8")
    assert main(["align", "--human", str(bad), "--judge", str(files[1])]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err
    import re
    assert re.search(message, err), err


def test_no_overlap(tmp_path, capsys):
    h = write(tmp_path / "h.csv", [("a", "IPE", 1), ("b", "IPE", 2)])
    j = write(tmp_path / "j.csv", [("c", "IPE", 1), ("d", "IPE", 2)])
    assert main(["align", "--human", str(h), "--judge", str(j)]) == 1
    err = capsys.readouterr().err
    assert "no sample_id is in both files" in err and str(h) in err and str(j) in err


def test_missing_file(tmp_path, capsys):
    h = write(tmp_path / "h.csv", [("a", "IPE", 1)])
    assert main(["align", "--human", str(h), "--judge", str(tmp_path / "nope.csv")]) == 1
    assert "nope.csv: no such file" in capsys.readouterr().err


def test_extra_columns_and_bom_are_fine(tmp_path):
    h = tmp_path / "h.csv"
    h.write_text("\ufeffrater,sample_id,metric,score\nx,a,IPE,1\ny,b,IPE,2\nz,c,IPE,4\n", encoding="utf-8")
    j = write(tmp_path / "j.csv", [("a", "IPE", 2), ("b", "IPE", 3), ("c", "IPE", 3)])
    result = A.align_files(h, j)
    assert result["IPE"]["n"] == 3


# ---- several raters, item-level answers and the alignment report --------------------------------

def test_krippendorff_alpha_matches_krippendorffs_worked_example():
    """Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 coders, 12 units."""
    nan = None
    coders = {"A": [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan], "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
              "C": [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan], "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan]}
    table = {c: {u: float(v) for u, v in enumerate(vs) if v is not None} for c, vs in coders.items()}
    assert A.krippendorff_alpha(table, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert A.krippendorff_alpha(table, "interval") == pytest.approx(0.849, abs=5e-4)
    assert A.krippendorff_alpha({"A": table["A"]}, "nominal") is None
    assert A.krippendorff_alpha({"A": {1: 1.0}, "B": {1: 1.0}}, "nominal") is None  # one value only


def test_spearman_ci_is_a_bootstrap_of_rho():
    ours = A.bootstrap_ci(HUMAN, JUDGE, resamples=4000, seed=1, rank=True)
    ref = stats.bootstrap((np.array(HUMAN), np.array(JUDGE)), lambda x, y: stats.spearmanr(x, y).statistic,
                          paired=True, vectorized=False, n_resamples=4000, method="percentile",
                          random_state=np.random.default_rng(1)).confidence_interval
    assert ours[0] == pytest.approx(ref.low, abs=0.05) and ours[1] == pytest.approx(ref.high, abs=0.05)
    assert A.metric_stats(list(zip(HUMAN, JUDGE)))["spearman_ci"] is not None


HEADER = "sample_id,metric,score,rater,item,text"


def raters_file(tmp_path, rows) -> Path:
    return write(tmp_path / "human.csv", [(a, b, f"{c},{d},{e},{f}") for a, b, c, d, e, f in rows], HEADER)


def verdicts_file(tmp_path, samples: dict[str, list[int]], runs: int = 1) -> Path:
    lines = [json.dumps({"sample": s, "run": r, "status": "ok", "verdicts": [{"score": v} for v in vs],
                         "items": [{"text": f"{s} item {i}"} for i in range(1, len(vs) + 1)]})
             for s, vs in samples.items() for r in range(1, runs + 1)]
    path = tmp_path / "verdicts.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_report_with_two_raters_and_items(tmp_path):
    judge_items = {"s1": [1, 0, -1, 1], "s2": [0, 0, 1, 1]}
    rows = []
    for rater, flip in (("ann", None), ("bob", ("s2", 3))):
        for s, vs in judge_items.items():
            for i, v in enumerate(vs, 1):
                rows.append((s, "item", 0 if (s, i) == flip else v, rater, i, f"{s} item {i}"))
        rows += [(f"s{k}", "IPE", h, rater, "", "") for k, h in enumerate(HUMAN)]
    human = raters_file(tmp_path, rows)
    judge = write(tmp_path / "judge.csv", [(f"s{k}", "IPE", j) for k, j in enumerate(JUDGE)])
    report = A.alignment_report(human, judge, verdicts_file(tmp_path, judge_items), resamples=300)
    assert report["raters"] == ["ann", "bob"]
    assert report["items"]["raters"]["ann"] == {"n": 8, "agreement": 1.0, "alpha": 1.0}
    assert report["items"]["raters"]["bob"]["agreement"] == pytest.approx(7 / 8)
    assert report["items"]["majority"] == {"n": 7, "agreement": 1.0, "alpha": 1.0, "ties": 1}
    assert report["metrics"]["IPE"]["pearson"] == pytest.approx(stats.pearsonr(HUMAN, JUDGE).statistic)
    assert report["inter_rater"]["metrics"]["IPE"]["alpha"] == pytest.approx(1.0)
    assert 0 < report["inter_rater"]["items"]["alpha"] < 1
    table = A.format_report(report)
    assert "rater majority" in table and "inter-rater" in table
    json.dumps(report)  # the report is JSON as it is


def test_the_judges_majority_over_runs_and_a_tie(tmp_path):
    path = tmp_path / "v.jsonl"
    path.write_text("\n".join(json.dumps({"sample": "s", "run": r, "status": "ok", "verdicts": [{"score": a}, {"score": b}],
                                          "items": [{"text": "x"}, {"text": "y"}]})
                              for r, (a, b) in enumerate([(1, 1), (1, -1), (0, 0), (1, 0)], 1)) + "\n")
    verdicts, _ = A.read_verdicts(path)
    assert verdicts == {("s", "1"): 1, ("s", "2"): 0}  # item 2: 1, -1, 0, 0 -> 0; a tie would also be 0


@pytest.mark.parametrize("row, message", [
    (("s1", "item", 2, "ann", 1, ""), "item score 2 is not -1, 0 or 1"),
    (("s1", "item", 1, "ann", "", ""), "needs an item number"),
    (("s1", "IPE", 3, "ann", "", ""), "rater 'ann' sample 's1' metric 'IPE' is already given in row 2"),
])
def test_bad_rater_rows_name_the_row(tmp_path, row, message):
    human = raters_file(tmp_path, [("s1", "IPE", 3, "ann", "", ""), row])
    with pytest.raises(A.AlignDataError, match=message):
        A.read_human(human)


def test_an_item_that_is_not_the_judged_item_is_refused(tmp_path):
    human = raters_file(tmp_path, [("s1", "item", 1, "ann", 1, "another item"), ("s1", "IPE", 3, "ann", "", "")])
    judge = write(tmp_path / "judge.csv", [("s1", "IPE", 2)])
    with pytest.raises(A.AlignDataError, match=r"row 2: sample 's1' item 1 is not the judged item 1"):
        A.alignment_report(human, judge, verdicts_file(tmp_path, {"s1": [1]}))


def test_the_same_sample_by_two_raters_is_their_mean(tmp_path):
    human = raters_file(tmp_path, [("s1", "IPE", 10, "ann", "", ""), ("s1", "IPE", 30, "bob", "", "")])
    assert A.read_scores(human) == {("s1", "IPE"): 20.0}
