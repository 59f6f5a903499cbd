"""`humanllm annotate` without a browser: stratified sampling, the database's identity, validated
writes over HTTP, logins and the password rule, and concurrent writers losing nothing."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import pattern_text
from humanllm_dsl.annotate.app import make_server
from humanllm_dsl.annotate.db import StudyDb
from humanllm_dsl.annotate.patterns import review_units
from humanllm_dsl.annotate.sampling import StudyError, stratified, stratum
from humanllm_dsl.evaluate.data import Item, Sample

UNITS = [{"id": "r1/Ann", "split": "id_eval", "stratum": "id_eval/none", "character": "Ann", "profile": "p",
          "turns": [{"char": "Ann", "own": True, "segments": [{"kind": "speech", "text": "<script>x</script>"}]}],
          "items": [{"key": "1", "kind": "ipe", "pattern": "a", "text": "i1"},
                    {"key": "2", "kind": "mpd", "pattern": None, "text": "i2"}]}]
IDENTITY = {"mode": "study", "source": "x", "n": 1, "seed": 0, "split": "all"}


def sample(i: int, split: str, types: tuple[str, ...]) -> Sample:
    record = {"id": f"r{i}", "split": split, "interactions": [{"type": t} for t in types]}
    return Sample(f"r{i}/C", record, "C", ("a",), (Item("ipe", "x", "a"),))


@given(st.lists(st.tuples(st.sampled_from(["id_eval", "ood_eval"]), st.sampled_from([(), ("conflict",), ("reinforce",)])),
                min_size=1, max_size=60), st.integers(1, 70), st.integers(0, 5))
def test_stratified_is_seeded_proportional_and_without_repeats(strata, n, seed):
    samples = [sample(i, s, t) for i, (s, t) in enumerate(strata)]
    chosen = stratified(samples, n, seed)
    assert chosen == stratified(list(reversed(samples)), n, seed)  # the order given does not matter
    assert len(chosen) == min(n, len(samples)) and len({s.id for s in chosen}) == len(chosen)
    sizes, got = Counter(map(stratum, samples)), Counter(map(stratum, chosen))
    for key, size in sizes.items():  # largest remainder: within one of the proportional share
        assert abs(got[key] - len(chosen) * size / len(samples)) < 1


def test_a_database_keeps_its_study(tmp_path):
    path = tmp_path / "s.sqlite"
    StudyDb.open(path, IDENTITY, lambda: UNITS)
    assert StudyDb.open(path, IDENTITY, lambda: pytest.fail("rebuilt")).units() == UNITS
    with pytest.raises(StudyError, match=r"holds another study \(seed: '0'\)"):
        StudyDb.open(path, IDENTITY | {"seed": 1}, lambda: UNITS)
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StudyError, match="not a study database"):
        StudyDb.open(tmp_path / "junk.sqlite", IDENTITY, lambda: UNITS)


@pytest.fixture
def served(tmp_path):
    servers = []

    def start(password=None, host="127.0.0.1"):
        db = StudyDb.open(tmp_path / "s.sqlite", IDENTITY, lambda: UNITS)
        server = make_server(db, host, 0, password)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", db

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


def call(url, data=None, cookie=None, ctype="application/json", headers=None):
    body = None if data is None else (data if isinstance(data, bytes) else json.dumps(data).encode())
    req = urllib.request.Request(url, body, {**({"Content-Type": ctype} if body is not None else {}),
                                             **({"Cookie": cookie} if cookie else {}), **(headers or {})})
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=10) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def login(url, name, password=None):
    form = f"name={name}" + (f"&password={password}" if password else "")
    status, _, headers = call(url + "/login", form.encode(), ctype="application/x-www-form-urlencoded")
    return status, (headers.get("Set-Cookie") or "").split(";")[0]


@pytest.mark.parametrize("body, message", [
    ({"unit": "r1/Ann", "item": "1", "score": 2}, "scored 1, 0 or -1"),
    ({"unit": "r1/Ann", "item": "1", "score": "1"}, "must be an integer"),
    ({"unit": "r1/Ann", "item": "1", "score": True}, "must be an integer"),
    ({"unit": "r1/Ann", "item": "1", "score": 1.0}, "must be an integer"),
    ({"unit": "r1/Ann", "item": "3", "score": 1}, "has no item '3'"),
    ({"unit": "r1/Ann", "item": "fidelity", "score": 101}, "0 to 100"),
    ({"unit": "r1/Ann", "item": "anthropomorphism", "score": -1}, "0 to 100"),
    ({"unit": "r9/Bob", "item": "1", "score": 1}, "no unit"),
    ({"unit": "r1/Ann", "item": "1", "score": 1, "comment": "hi"}, "comments are for pattern reviews"),
    ({"unit": "r1/Ann", "item": "1", "score": 1, "rater": "mallory"}, "send an object"),
    ([1, 2], "send an object"),
    (b"{not json", "not JSON"),
])
def test_bad_writes_are_refused_and_store_nothing(served, body, message):
    url, db = served()
    _, cookie = login(url, "alice")
    status, answer, _ = call(url + "/api/score", body, cookie)
    assert status == 400 and message in json.loads(answer)["error"]
    assert db.rows() == 0


def test_writes_need_a_login_json_and_the_same_origin(served):
    url, db = served()
    good = {"unit": "r1/Ann", "item": "1", "score": -1}
    assert call(url + "/api/score", good)[0] == 401
    assert call(url + "/api/score", good, "rater=alice|" + "0" * 64)[0] == 401  # a forged login
    _, cookie = login(url, "alice")
    assert call(url + "/api/score", json.dumps(good).encode(), cookie, ctype="text/plain")[0] == 415
    assert call(url + "/api/score", good, cookie, headers={"Origin": "http://evil.example"})[0] == 403
    assert db.rows() == 0
    status, answer, _ = call(url + "/api/score", good, cookie)
    assert status == 200 and json.loads(answer)["ok"] and db.answers()[0]["score"] == -1
    assert login(url, "")[0] == 400 and login(url, "x" * 65)[0] == 400


def test_pages_escape_record_text(served):
    url, _ = served()
    _, cookie = login(url, "alice")
    status, page, _ = call(url + "/u/1", cookie=cookie)
    assert status == 200 and b"&lt;script&gt;x&lt;/script&gt;" in page and b"<script>x" not in page


def test_beyond_loopback_a_password_is_required(served, tmp_path):
    db = StudyDb.open(tmp_path / "s.sqlite", IDENTITY, lambda: UNITS)
    with pytest.raises(ValueError, match="set a shared password"):
        make_server(db, "0.0.0.0", 0, None)
    url, _ = served(password="s3cret")
    assert login(url, "alice", "wrong")[0] == 401
    assert login(url, "alice")[0] == 401
    status, cookie = login(url, "alice", "s3cret")
    assert status == 303 and call(url + "/api/score", {"unit": "r1/Ann", "item": "2", "score": 1}, cookie)[0] == 200


def test_concurrent_raters_lose_no_write(served):
    url, db = served()
    cookies = [login(url, f"rater{i}")[1] for i in range(8)]
    errors = []

    def work(cookie):
        for k in range(25):
            status, _, _ = call(url + "/api/score", {"unit": "r1/Ann", "item": "fidelity", "score": k}, cookie)
            if status != 200:
                errors.append(status)

    threads = [threading.Thread(target=work, args=(c,)) for c in cookies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and db.rows() == 8 * 25
    assert {a["score"] for a in db.answers()} == {24}  # each rater's latest answer
    status, body, _ = call(url + "/api/progress", cookie=cookies[0])
    assert status == 200 and set(json.loads(body)) == {f"rater{i}" for i in range(8)}


def test_review_units_from_a_drafted_file_and_errors(tmp_path):
    draft = tmp_path / "d.hpat"
    draft.write_text(pattern_text("alpha", items=2), encoding="utf-8")
    [unit] = review_units([draft])
    assert unit["id"] == "alpha" and list(unit["aspects"]) == ["definition", "mechanisms", "manifestations", "checklist"]
    assert len(unit["aspects"]["checklist"]) == 2 and unit["where"].endswith("d.hpat:1:1")
    bad = tmp_path / "bad.hpat"
    bad.write_text("pattern oops {\n", encoding="utf-8")
    with pytest.raises(StudyError, match=r"bad.hpat:\d+:\d+"):
        review_units([bad])
    (tmp_path / "dup.hpat").write_text(pattern_text("alpha"), encoding="utf-8")
    with pytest.raises(StudyError, match="is also defined at"):
        review_units([draft, tmp_path / "dup.hpat"])


def test_pattern_review_scores_are_1_to_4_for_aspects_that_exist(tmp_path):
    draft = tmp_path / "d.hpat"
    draft.write_text(pattern_text("alpha"), encoding="utf-8")
    db = StudyDb.open(tmp_path / "r.sqlite", IDENTITY | {"mode": "patterns"}, lambda: review_units([draft]))
    db.record("ann", "alpha", "definition", 4, "clear")
    for item, score, message in (("definition", 5, "1, 2, 3 or 4"), ("definition", 0, "1, 2, 3 or 4"),
                                 ("sources", 3, "has no aspect 'sources'")):
        with pytest.raises(ValueError, match=message):
            db.record("ann", "alpha", item, score)
    with pytest.raises(ValueError, match="at most 4000"):
        db.record("ann", "alpha", "checklist", 3, "x" * 4001)
    assert [(a["item"], a["score"], a["comment"]) for a in db.answers()] == [("definition", 4, "clear")]


def test_cli_errors(tmp_path, capsys):
    from humanllm_dsl.annotate.cli import main

    assert main([str(tmp_path / "nope"), "--db", str(tmp_path / "s.sqlite")]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    assert main([str(tmp_path), "--db", str(tmp_path / "s.sqlite")]) == 1
    assert "neither an eval folder" in capsys.readouterr().err
    assert main(["export", "--db", str(tmp_path / "s.sqlite")]) == 2
    assert main(["--db", str(tmp_path / "s.sqlite")]) == 2
    assert not (tmp_path / "s.sqlite").exists()
