"""`humanllm push`: upload a build folder to the Hugging Face Hub as a dataset repository.

What goes up is what a reader of the dataset needs: the card (README.md, whose `configs:` block
names the splits), splits/, sft/, patterns.json and manifest.json. The resume state (work/,
cache/), the plan, failures, the local Arrow copy (hf/) and lock or marker files stay home.
huggingface_hub is imported only when a push runs; `HF_ENDPOINT` picks another Hub.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from .runtime.layout import Build

UPLOADED = ("README.md", "manifest.json", "patterns.json", "splits/*.jsonl", "sft/*.jsonl", "sft/*.json")


class PushError(RuntimeError):
    """A build that cannot be pushed, a missing token, or the Hub refusing the upload."""


@attrs.frozen
class Pushed:
    repo: str
    url: str
    files: tuple[str, ...]


def uploaded_files(build: Path) -> tuple[str, ...]:
    """The files of `build` that a push uploads, relative and sorted."""
    return tuple(sorted(p.relative_to(build).as_posix() for pattern in UPLOADED for p in build.glob(pattern)
                        if p.is_file()))


def _check_build(build: Path) -> None:
    b = Build(build)
    if not b.manifest.is_file() or not b.splits.is_dir():
        raise PushError(f"{build}: not a finished build (no manifest.json or splits/); run `humanllm compile` first")
    head = b.card.read_text("utf-8")[:4] if b.card.is_file() else ""
    if head != "---\n":
        raise PushError(f"{b.card}: the dataset card has no YAML front matter (written by an older humanllm?); "
                        f"run the same `humanllm compile` again to rewrite it")


def _token(token_env: str | None) -> str | None:
    """The token from the named variable; None leaves huggingface_hub to its own (HF_TOKEN, login)."""
    if token_env is None:
        return None
    value = os.environ.get(token_env)
    if not value:
        raise PushError(f"the environment variable {token_env} (--token-env) is not set")
    return value


def push(build: Path, repo: str, *, private: bool = False, token_env: str | None = None,
         message: str | None = None) -> Pushed:
    """Create the dataset repository `repo` if needed (private if asked) and upload the build's
    dataset files in one commit. Raises PushError with the Hub's reason."""
    build = Path(build)
    _check_build(build)
    files = uploaded_files(build)
    token = _token(token_env)
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, HTTPError

    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
    try:
        url = api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(repo_id=repo, repo_type="dataset", folder_path=build, allow_patterns=list(UPLOADED),
                          commit_message=message or f"humanllm push of {build.name}")
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise PushError(f"the Hub refused the upload to {repo} (HTTP {status}): {exc.server_message or exc}") from None
    except (HTTPError, OSError) as exc:  # connection refused, DNS, TLS
        raise PushError(f"cannot reach the Hub at {api.endpoint}: {exc}") from None
    return Pushed(repo, str(url), files)
