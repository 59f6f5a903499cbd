"""The column types of what a build stores, written once: a record (records.jsonl, splits/, hf/)
and an SFT chat sample (sft/messages_<split>.jsonl). From each description come the Arrow schema
the Parquet copy is written with and the `features` the dataset card declares for the Hub.

A description is nested Python: "string" is text, [X] a list of X, {name: X, ...} a struct.
Pure Python; pyarrow is imported only to build an Arrow schema.
"""

from __future__ import annotations

_BY_CHAR = [{"char": "string", "items": ["string"]}]

RECORD = {
    "background": "string",
    "char2pattern": [{"char": "string", "patterns": ["string"]}],
    "characters": [{"name": "string", "about_self": "string", "about_others": [{"name": "string", "view": "string"}]}],
    "checklist": _BY_CHAR,
    "conversation": [{"action": "string", "char": "string", "content": "string",
                      "segments": [{"kind": "string", "text": "string"}], "speech": "string", "thought": "string"}],
    "design_analysis": "string", "domain": "string", "id": "string",
    "interactions": [{"because": "string", "direction": {"from": ["string"], "to": ["string"]}, "expect": "string",
                      "patterns": ["string"], "type": "string"}],
    "lm": "string", "pattern_names": ["string"], "patterns": ["string"], "protagonist": "string",
    "situation": "string", "split": "string",
    "variation": {"analysis": "string", "background": "string", "changed_factors": ["string"], "checklist": _BY_CHAR},
}

SFT_SAMPLE = {"id": "string", "scenario": "string", "split": "string", "character": "string",
              "patterns": ["string"], "messages": [{"role": "string", "content": "string"}]}


def hub_yaml(description: dict) -> list[dict]:
    """The `features` list of a dataset card's `dataset_info`, as the Hub writes it."""
    def entry(name: str, kind) -> dict:
        if kind == "string":
            return {"name": name, "dtype": "string"}
        if isinstance(kind, list):
            inner = kind[0]
            return {"name": name, "list": "string" if inner == "string" else hub_yaml(inner)}
        return {"name": name, "struct": hub_yaml(kind)}

    return [entry(name, kind) for name, kind in description.items()]


def arrow_schema(description: dict):
    """The pyarrow schema of a description."""
    import pyarrow as pa

    def arrow(kind):
        if kind == "string":
            return pa.string()
        if isinstance(kind, list):
            return pa.list_(arrow(kind[0]))
        return pa.struct([(name, arrow(inner)) for name, inner in kind.items()])

    return pa.schema([(name, arrow(kind)) for name, kind in description.items()])
