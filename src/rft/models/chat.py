"""Chat prompts: messages rendered with the tokenizer's own chat template.

``apply_chat_template(messages, add_generation_prompt=True)`` appends the header of the assistant
turn, so the model's completion is the reply (the way TRL and vLLM render chat prompts). The
template already writes any BOS token it wants, so no special tokens are added again.
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase


def chat_prompt_text(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]]) -> str:
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def chat_prompt_ids(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]]) -> list[int]:
    # return_dict=False: transformers 5 returns a BatchEncoding by default, whose list() is its keys
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    return [int(i) for i in ids]
