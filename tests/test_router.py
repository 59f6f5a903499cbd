"""Many endpoints of one model (`api_bases`): LiteLLM's Router spreads the calls, and an endpoint
that keeps failing is cooled down while the run completes on the others."""

import json
from pathlib import Path

import pytest

from humanllm_dsl.cli import main
from humanllm_dsl.runtime.backends import LMSpec
from humanllm_dsl.runtime.lmconfig import ConfigError, load_config
from humanllm_dsl.testing import FakeOpenAIServer, Faults
from libgen import outputs, write_library


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> Path:
    return write_library(tmp_path_factory.mktemp("spec"), scenarios=8)


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-router-0123456789")


def config(tmp_path: Path, *bases: str) -> Path:
    path = tmp_path / "lm.toml"
    listed = ", ".join(f'"{b}"' for b in bases)
    path.write_text(f'[lm]\nmodel = "openai/fake-model"\napi_bases = [{listed}]\ncooldown = 60\n\n'
                    "[limits]\nconcurrency = 4\nbackoff = 0.05\nbackoff_max = 0.2\n", encoding="utf-8")
    return path


def test_calls_spread_over_healthy_endpoints_and_a_failing_one_is_cooled_down(spec, tmp_path):
    with FakeOpenAIServer(latency=0.01) as a, FakeOpenAIServer(latency=0.01) as b, \
            FakeOpenAIServer(faults=Faults(server_error=1.0)) as bad, FakeOpenAIServer() as single:
        lm_config = config(tmp_path, a.base_url, bad.base_url, b.base_url)
        assert main(["compile", str(spec), "-o", str(tmp_path / "many"), "--no-progress", "--no-cache",
                     "--lm-config", str(lm_config)]) == 0
        assert main(["compile", str(spec), "-o", str(tmp_path / "one"), "--no-progress", "--no-cache",
                     "--lm", "openai/fake-model", "--api-base", single.base_url]) == 0
        healthy = a.counts["ok"] + b.counts["ok"]
        assert a.counts["ok"] > 0 and b.counts["ok"] > 0  # spread, not pinned to one
        assert healthy == single.counts["ok"]  # every call answered once, by a healthy endpoint
        # with three endpoints at random a third of ~40 calls would reach it; the cool-down stops
        # that after the failures the Router allows (a few calls already in flight may land too)
        assert 1 <= bad.requests <= 4, bad.counts
        resent = bad.requests
    many, one = outputs(tmp_path / "many"), outputs(tmp_path / "one")
    manifests = [json.loads(d.pop("manifest.json")) for d in (many, one)]
    assert many == one  # the same data, whichever endpoint answered
    assert manifests[0].pop("transient_retries") == resent  # each failed call was resent, once
    manifests[1].pop("transient_retries")
    assert manifests[0] == manifests[1]


def test_api_bases_in_the_config_file(tmp_path):
    loaded = load_config(config(tmp_path, "http://a:8000/v1", "http://b:8000/v1"))
    assert loaded.lm.api_bases == ("http://a:8000/v1", "http://b:8000/v1")
    assert loaded.lm.cooldown == 60


def test_one_endpoint_or_many_not_both(tmp_path):
    path = tmp_path / "lm.toml"
    path.write_text('[lm]\nmodel = "openai/m"\napi_base = "http://a/v1"\napi_bases = ["http://b/v1"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="not both"):
        load_config(path)
    with pytest.raises(ValueError, match="not both"):
        LMSpec(model="openai/m", api_base="http://a/v1", api_bases=("http://b/v1",))
