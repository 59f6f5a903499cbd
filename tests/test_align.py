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
