"""reasoning-gym (open-thought/reasoning-gym: procedural tasks, each with its own verifier) as a
built-in task: ``data.task: {name: reasoning_gym, dataset: chain_sum, size: 2000, config: {...}}``
(``pip install 'rft[reasoning-gym]'``).

Splits: validation is ``reasoning_gym.create_dataset(dataset, size=val_size, seed=2*seed, **config)``,
training the same with ``size`` (default 2000) and ``seed=2*seed+1``: different seeds for any run
seed, so the splits are disjoint by seed; a training entry whose question a validation entry also
asks (a small problem space repeats itself) is dropped, so they are disjoint by prompt too. The
generated entries are deterministic in the seed (reasoning-gym seeds each entry from it).

Prompt: the entry's question and :data:`INSTRUCTION` (answer inside ``<answer></answer>``), as a chat
user turn (``chat: true``, default) or plain text; ``max_prompt_chars`` drops longer ones. Fields:
``rg_dataset``, ``rg_config``, ``rg_entry`` (the whole entry: the ``reasoning_gym`` grader hands it
to the dataset's ``score_answer``), ``answer`` (the entry's answer) and ``solution``
(``<answer>ANSWER</answer>``: the reference completion) when the entry has an answer.

Not covered: the ``composite`` dataset (several datasets mixed: list them in one data file instead),
curricula (reasoning-gym's difficulty schedules), reasoning-gym's own prompt templates.
"""

from __future__ import annotations

import difflib
from typing import Any

from rft.config import ConfigError
from rft.config.tasks import ReasoningGymTask
from rft.data import DataError, Example, assert_disjoint
from rft.tasks.split import DEFAULT_TRAIN_SIZE

INSTRUCTION = "Give only your final answer, inside <answer></answer> tags."
GRADER_SPEC = {"type": "reasoning_gym"}


def _create(cfg: ReasoningGymTask, size: int, seed: int) -> Any:
    try:
        import reasoning_gym
        from reasoning_gym.factory import DATASETS
    except ImportError:
        raise ConfigError("data.task.name reasoning_gym needs the reasoning-gym package, which is not installed; "
                          "`pip install 'rft[reasoning-gym]'`") from None
    name = cfg.dataset or ""
    if name == "composite" or name not in DATASETS:
        near = difflib.get_close_matches(name, [n for n in DATASETS if n != "composite"], n=3)
        raise ConfigError(f"data.task.dataset: {name!r} is not a reasoning-gym dataset"
                          + (f"; did you mean {' or '.join(near)}?" if near else f" (there are {len(DATASETS)})"))
    taken = sorted({"size", "seed"} & set(cfg.config))
    if taken:
        raise ConfigError(f"data.task.config: {taken} are set by rft (data.task.size, val_size and the run's "
                          "seed); remove them")
    try:
        return reasoning_gym.create_dataset(name, **{**cfg.config, "size": size, "seed": seed})
    except (TypeError, ValueError, AssertionError) as e:
        fields = sorted(getattr(DATASETS[name][1], "__dataclass_fields__", {}))
        raise ConfigError(f"data.task.config for {name!r} is not valid ({type(e).__name__}: {e}); "
                          f"its fields are {[f for f in fields if f not in ('size', 'seed')]}") from None


def _examples(dataset: Any, cfg: ReasoningGymTask, split: str) -> list[Example]:
    out = []
    for i in range(len(dataset)):
        entry = dataset[i]
        text = f"{entry['question']}\n\n{INSTRUCTION}"
        if cfg.max_prompt_chars is not None and len(text) > cfg.max_prompt_chars:
            continue
        fields: dict[str, Any] = {"rg_dataset": cfg.dataset, "rg_config": dict(cfg.config), "rg_entry": entry}
        if entry.get("answer") is not None:
            fields.update(answer=str(entry["answer"]), solution=f"<answer>{entry['answer']}</answer>")
        prompt: Any = [{"role": "user", "content": text}] if cfg.chat else text
        out.append(Example(id=f"{cfg.dataset}-{split}-{i}", prompt=prompt, fields=fields))
    return out


def make_reasoning_gym(cfg: ReasoningGymTask, seed: int) -> tuple[list[Example], list[Example], dict]:
    """(train, val, grader_spec). Deterministic in ``seed``; val and train share no question."""
    val = _examples(_create(cfg, cfg.val_size, 2 * seed), cfg, "val")
    train = _examples(_create(cfg, cfg.size or DEFAULT_TRAIN_SIZE, 2 * seed + 1), cfg, "train")
    asked = {e.prompt_key() for e in val}
    train = [e for e in train if e.prompt_key() not in asked]
    if not train or not val:
        raise DataError(f"reasoning_gym {cfg.dataset}: {len(train)} training and {len(val)} validation entries "
                        "left (questions asked in both splits are dropped from training; max_prompt_chars drops "
                        "long ones); raise data.task.size or max_prompt_chars, or make the problems larger")
    assert_disjoint(train, val)
    return train, val, dict(GRADER_SPEC)
