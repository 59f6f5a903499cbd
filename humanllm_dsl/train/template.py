"""The training chat template: loss only on the assistant's (the trained character's) tokens.

TRL's `assistant_only_loss` needs `{% generation %}` markers around what the assistant writes.
`training_template` keeps a template that has them, else takes TRL's patched version of a known
template (Qwen3, Llama 3, ...), else, for a ChatML tokenizer (`<|im_start|>`/`<|im_end|>`),
uses the ChatML template below. `verify` then renders a probe conversation and checks, token by
token, that exactly the assistant turns (and their end-of-turn token) are marked.
"""

from __future__ import annotations

from pathlib import Path

CHATML_TRAINING_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- generation -%}{{- message['content'] + '<|im_end|>' -}}{%- endgeneration -%}"
    "{{- '\\n' -}}"
    "{%- else -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

PROBE = [
    {"role": "system", "content": "You are Probe Person. Stay in character."},
    {"role": "user", "content": "Other Person: (waves) Are you coming along tonight?"},
    {"role": "assistant", "content": "[not again] (shrugs) Maybe later."},
    {"role": "user", "content": "Other Person: (frowns) That is what you said last week."},
    {"role": "assistant", "content": "[fair point] (laughs) Fine, I will come."},
]


class TemplateError(ValueError):
    """The tokenizer's chat template cannot mark the assistant's tokens (exit code 1)."""


def has_markers(template: str | None) -> bool:
    from trl.chat_template_utils import has_generation_markers

    return bool(template) and has_generation_markers(template)


def training_template(tokenizer, override: str | Path | None = None) -> tuple[str, str]:
    """(template, where it came from). `override` is a Jinja file that replaces the tokenizer's."""
    if override is not None:
        path = Path(override)
        try:
            template = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TemplateError(f"--chat-template {path}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(f"--chat-template {path}: cannot read: {exc}") from None
        if not has_markers(template):
            raise TemplateError(f"--chat-template {path}: the template has no {{% generation %}} markers "
                                "around the assistant's text, so the loss cannot be limited to its turns")
        return template, f"file {path}"
    current = tokenizer.chat_template
    if isinstance(current, dict):
        current = current.get("default")
    if has_markers(current):
        return current, "the tokenizer's own (it has generation markers)"
    if current:
        from trl.chat_template_utils import get_training_chat_template

        try:
            patched = get_training_chat_template(tokenizer)
        except ValueError:
            patched = None
        if patched:
            return patched, "TRL's training version of the tokenizer's template"
    vocab = tokenizer.get_vocab()
    if "<|im_start|>" in vocab and "<|im_end|>" in vocab:
        return CHATML_TRAINING_TEMPLATE, "humanllm's ChatML template with generation markers"
    what = "has no chat template" if not current else "has a chat template without generation markers"
    raise TemplateError(f"the tokenizer {what}, and humanllm cannot add the markers for it; pass "
                        "--chat-template FILE.jinja with {% generation %}...{% endgeneration %} around "
                        "each assistant turn's text and end-of-turn token")


def assistant_mask(tokenizer, messages: list[dict], template: str) -> tuple[list[int], list[int]]:
    """(input_ids, mask) where mask[i] is 1 for tokens the assistant wrote."""
    out = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
    return list(out["input_ids"]), list(out["assistant_masks"])


def verify(tokenizer, template: str) -> None:
    """Check on a probe conversation that the marked tokens are exactly the assistant turns."""
    ids, mask = assistant_mask(tokenizer, PROBE, template)
    marked = tokenizer.decode([t for t, k in zip(ids, mask) if k])
    unmarked = tokenizer.decode([t for t, k in zip(ids, mask) if not k])
    problems = []
    for m in PROBE:
        inside = m["content"] in marked
        if m["role"] == "assistant" and (not inside or m["content"] in unmarked):
            problems.append(f"the assistant text {m['content']!r} is not wholly marked")
        if m["role"] != "assistant" and inside:
            problems.append(f"the {m['role']} text {m['content']!r} is marked as the assistant's")
    if problems:
        raise TemplateError("the chat template's generation markers are wrong: " + "; ".join(problems))


def stop_token_trained(tokenizer, template: str) -> bool:
    """Whether the assistant's end-of-turn token is inside the marked span (else the model never
    learns to stop)."""
    from trl.chat_template_utils import is_chat_template_stop_token_trained

    return is_chat_template_stop_token_trained(tokenizer, chat_template=template)
