"""Records are typed: every compiled record round-trips through the Record class, and a
malformed one is an error naming the record and the field."""

import json
from pathlib import Path

import pytest

import humanllm_dsl as h
from humanllm_dsl.runtime.compile import CompileOptions, compile_dataset
from humanllm_dsl.runtime.layout import Build
from humanllm_dsl.runtime.records import RecordError, char2pattern, dump_record, load_record, map_shape, stored_shape

SPECS = Path(__file__).resolve().parent.parent / "specs"


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    out = tmp_path_factory.mktemp("records")
    compile_dataset(h.load(str(SPECS)), CompileOptions(out=out, scenarios=6, progress=None))
    return [json.loads(line) for line in Build(out).records.read_text("utf-8").splitlines()]


def test_every_record_round_trips(rows):
    assert rows
    for row in rows:
        record = load_record(row)
        assert dump_record(record) == row
        assert record.character(record.protagonist).name == record.protagonist


@pytest.mark.parametrize("field, value, expected", [
    ("characters", "Ana, Ben", "expected a list, found str at characters"),
    ("variation", "v", "expected an object, found str at variation"),
    ("conversation", [{"char": "A"}], "a required field is missing at conversation[0].content"),
    ("lm", 3, "expected text, found int at lm"),
])
def test_a_malformed_record_names_itself_and_the_field(rows, field, value, expected):
    bad = dict(rows[0], **{field: value})
    with pytest.raises(RecordError) as info:
        load_record(bad, "splits/id_eval.jsonl:7")
    message = str(info.value)
    assert message.startswith(f"splits/id_eval.jsonl:7: record `{rows[0]['id']}`: ")
    assert expected in message


def test_name_keyed_maps_are_stored_as_lists_and_old_builds_still_load(rows):
    row = rows[0]
    assert all(set(e) == {"char", "patterns"} for e in row["char2pattern"])
    assert all(set(e) == {"char", "items"} for e in row["checklist"] + row["variation"]["checklist"])
    assert all(set(e) == {"name", "view"} for c in row["characters"] for e in c["about_others"])
    old = map_shape(row)  # the shape builds had before: objects keyed by character name
    assert isinstance(old["char2pattern"], dict) and isinstance(old["characters"][0]["about_others"], dict)
    record = load_record(old)
    assert dump_record(record) == row == stored_shape(old)
    assert record.char2pattern == {e["char"]: tuple(e["patterns"]) for e in row["char2pattern"]}
    assert char2pattern(row) == char2pattern(old) == {e["char"]: e["patterns"] for e in row["char2pattern"]}
