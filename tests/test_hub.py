"""The Hub: the dataset card's front matter is what the Hub reads (its `configs:` keep the four
splits apart under `datasets.load_dataset`), and `humanllm push` uploads the dataset files
through huggingface_hub's real client to a fake Hub on 127.0.0.1."""

import json
from pathlib import Path

import datasets
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import humanllm_dsl as h
from humanllm_dsl.cli import main
from humanllm_dsl.runtime.compile import CompileOptions, compile_dataset
from humanllm_dsl.runtime.export import size_category
from humanllm_dsl.testing.hub_server import FakeHub

SPECS = Path(__file__).resolve().parent.parent / "specs"
SPLITS = ("train", "id_eval", "ood_eval", "mixed_eval")
TOKEN = "hf_fakeTOKENfortests0123456789"


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    out = tmp_path_factory.mktemp("hub") / "build"
    compile_dataset(h.load(str(SPECS)), CompileOptions(out=out, scenarios=8, progress=None))
    return out


@pytest.fixture
def fake_hub(monkeypatch):
    """A fake Hub on 127.0.0.1, reachable although conftest puts huggingface_hub offline."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with FakeHub(token=TOKEN) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        yield hub


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card[4:card.index("\n---\n", 4)])


def test_the_card_starts_with_hub_metadata(build):
    meta = front_matter((build / "README.md").read_text("utf-8"))
    manifest = json.loads((build / "manifest.json").read_text("utf-8"))
    assert meta["license"] == "mit" and meta["language"] == ["en"] and meta["task_categories"] == ["text-generation"]
    assert meta["size_categories"] == ["n<1K"] and "psychology" in meta["tags"] and "offline-placeholder" in meta["tags"]
    assert meta["pretty_name"] == f"{manifest['dataset']} (HumanLLM)"
    default = next(c for c in meta["configs"] if c["config_name"] == "default")
    assert default["data_files"] == [{"split": s, "path": f"splits/{s}.jsonl"} for s in SPLITS if manifest["splits"][s]]


def test_load_dataset_on_the_folder_keeps_the_four_splits_apart(build):
    manifest = json.loads((build / "manifest.json").read_text("utf-8"))
    assert all(manifest["splits"][s] for s in SPLITS)
    loaded = datasets.load_dataset(str(build))
    assert sorted(loaded) == sorted(SPLITS)
    assert {s: loaded[s].num_rows for s in SPLITS} == {s: manifest["splits"][s] for s in SPLITS}
    sft = datasets.load_dataset(str(build), "sft")
    assert {s: sft[s].num_rows for s in SPLITS} == {s: manifest["sft_samples"][s] for s in SPLITS}
    # one shape: a row as the Hub loads it equals the line in splits/ and the row of the hf/ copy
    first = json.loads((build / "splits" / "train.jsonl").read_text("utf-8").splitlines()[0])
    assert loaded["train"][0] == first == datasets.load_dataset(str(build / "hf"))["train"][0]
    assert isinstance(first["char2pattern"], list) and {"char", "patterns"} == set(first["char2pattern"][0])


def test_push_uploads_the_dataset_files_and_nothing_else(build, fake_hub, monkeypatch, capsys):
    (build / "cache").mkdir(exist_ok=True)
    (build / "cache" / "x.db").write_text("cache")
    monkeypatch.setenv("MY_HUB_TOKEN", TOKEN)
    assert main(["push", str(build), "me/humanllm-pilot", "--private", "--token-env", "MY_HUB_TOKEN"]) == 0
    hub = fake_hub
    repo = hub.repos["me/humanllm-pilot"]
    assert repo.private and len(repo.commits) == 1
    expected = {"README.md", "manifest.json", "patterns.json", "sft/dataset_info.json",
                *(f"splits/{s}.jsonl" for s in SPLITS), *(f"sft/messages_{s}.jsonl" for s in SPLITS),
                *(f"sft/sharegpt_{s}.json" for s in SPLITS)}
    assert set(repo.files) == expected
    assert repo.files["splits/train.jsonl"] == (build / "splits" / "train.jsonl").read_bytes()
    assert hub.cards and hub.cards[0]["configs"][0]["config_name"] == "default"
    out = capsys.readouterr().out
    assert f"pushed {len(expected)} files" in out and "me/humanllm-pilot" in out


def test_push_refusals_are_clear_and_never_show_the_token(build, fake_hub, tmp_path, monkeypatch, capsys):
    assert main(["push", str(build), "me/d", "--token-env", "NOT_SET_ANYWHERE"]) == 2
    assert "NOT_SET_ANYWHERE (--token-env) is not set" in capsys.readouterr().err
    monkeypatch.setenv("WRONG", "hf_wrongTOKEN0123456789abcdef")
    assert main(["push", str(build), "me/d", "--token-env", "WRONG"]) == 2
    err = capsys.readouterr().err
    assert "HTTP 401" in err and "hf_wrong" not in err and TOKEN not in err
    (tmp_path / "x").mkdir()
    assert main(["push", str(tmp_path / "x"), "me/d"]) == 2
    assert "not a finished build" in capsys.readouterr().err
    assert not fake_hub.repos


def test_completion_scripts_cover_every_command(capsys):
    for shell in ("bash", "zsh"):
        assert main(["completion", shell]) == 0
        script = capsys.readouterr().out
        for command in ("compile", "train", "eval", "push", "completion", "--report-to"):
            assert command in script, (shell, command)


def hub_list(name: str):
    """A list of valid metadata values as the Hub's tooling ships it (datasets' own resources)."""
    from importlib.resources import files

    return json.loads(files("datasets.utils.resources").joinpath(name).read_text("utf-8"))


def test_the_card_parses_as_the_hub_parses_it(build):
    from huggingface_hub import DatasetCard, DatasetCardData

    manifest = json.loads((build / "manifest.json").read_text("utf-8"))
    card = DatasetCard.load(build / "README.md")
    assert isinstance(card.data, DatasetCardData) and card.text.lstrip().startswith("# ")
    data = card.data
    assert data.license == "mit" and data.task_categories == ["text-generation"]
    assert set(data.language) <= set(hub_list("languages.json"))
    assert data.size_categories == [size_category(sum(manifest["splits"].values()))]
    assert set(data.size_categories) <= set(hub_list("size_categories.json")) - {"unknown"}
    assert data.pretty_name and all(isinstance(t, str) and t for t in data.tags)
    assert DatasetCardData(**data.to_dict()).to_dict() == data.to_dict()  # round-trips through the Hub's class
    counts = {"default": manifest["splits"], "sft": manifest["sft_samples"]}
    for config in data.configs:
        splits = [f["split"] for f in config["data_files"]]
        assert splits == [s for s in SPLITS if counts[config["config_name"]][s]]  # every split with rows, by name
        assert all((build / f["path"]).is_file() for f in config["data_files"])  # paths that exist
    infos = {i["config_name"] for i in data.to_dict()["dataset_info"]}
    assert infos == {c["config_name"] for c in data.configs} == {"default", "sft"}


def hub_bounds(label: str) -> tuple[int, float]:
    """The row range a size_categories label names: "10K<n<100K" -> (10_000, 100_000)."""
    scale = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}
    number = lambda text: int(text[:-1]) * scale[text[-1]] if text[-1] in scale else int(text)  # noqa: E731
    if label.startswith("n<"):
        return 0, number(label[2:])
    if label.startswith("n>"):
        return number(label[2:]), float("inf")
    low, high = label.split("<n<")
    return number(low), number(high)


@given(st.integers(min_value=0, max_value=10**13))
def test_size_category_is_the_hub_bucket_holding_n(n):
    label = size_category(n)
    assert label in hub_list("size_categories.json")
    low, high = hub_bounds(label)
    assert low <= n < high


def test_a_build_with_empty_splits_loads_the_splits_it_has(tmp_path):
    """datasets refuses a split with no rows, so the card names only the splits that hold some;
    each loads with the manifest's count."""
    out = tmp_path / "small"
    compile_dataset(h.load(str(SPECS)), CompileOptions(out=out, scenarios=2, progress=None))
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert 0 in manifest["splits"].values()
    loaded = datasets.load_dataset(str(out))
    assert {s: loaded[s].num_rows for s in loaded} == {s: n for s, n in manifest["splits"].items() if n}
