"""What every job starts from: threads and seeds set, the data split, the model and tokenizer loaded
through the one local-directory path, the grader built, and the inputs checked against each other
(prompts fit the context; the dataset is not empty). Shared by sft, train, doctor and demo."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rft.config import Config, ConfigError
from rft.config.base import SpecError
from rft.data import DataError, Example, require_chat_template
from rft.envs import build_environment
from rft.envs.episodes import EpisodeRunner
from rft.graders.pool import GraderPool
from rft.graders.registry import build
from rft.models.load import context_length, load_policy
from rft.rollout.base import RolloutEngine
from rft.rollout.engines import build_engine
from rft.tasks import load_splits
from rft.training.evaluate import encode_prompt
from rft.training.optim import seed_everything


@dataclass
class Session:
    cfg: Config
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    model_path: str
    train: list[Example]
    val: list[Example]
    grader_spec: dict[str, Any] | None
    prompt_ids: dict[str, list[int]]
    episodes: EpisodeRunner  # the environment (one turn unless configured) and its observation format

    def pool(self) -> GraderPool:
        return GraderPool(self.grader_spec, self.cfg.grading.workers, self.cfg.grading.timeout_s)

    def engine(self, model: Any = None) -> RolloutEngine:
        """The sampling engine ``sampling.backend`` names, on the policy (or ``model``: a wrapped policy)."""
        c = self.cfg
        return build_engine(c.sampling.backend, model if model is not None else self.model, self.tokenizer,
                            model_path=self.model_path, dtype=c.model.dtype, seed=c.seed,
                            gpu_memory_utilization=c.sampling.vllm_gpu_memory_utilization)

    @property
    def eval_examples(self) -> list[Example]:
        return self.val[: self.cfg.eval.size] if self.cfg.eval.size else self.val


def open_session(cfg: Config, model_path: str | None = None) -> Session:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    train, val, task_spec = load_splits(cfg.data, cfg.seed)
    if not train or not val:
        raise DataError("the dataset has no training or no validation examples; add rows or lower data.val_size")
    spec = cfg.grader or task_spec
    if spec is None and any(e.grader is None for e in train + val):
        raise ConfigError("grader: no grader configured and some rows name none; add a `grader:` spec to the config")
    try:
        if spec is not None:
            build(spec)  # fail at load, not at the first step
    except SpecError as e:
        raise ConfigError(f"grader: {e}") from None
    env = build_environment(cfg, spec)
    check_rows(env, train + val)
    check_environment(env, train[0])  # both before the model loads
    model, tokenizer, path = load_policy(cfg.model, model_path)  # LoRA adapters added or reloaded here
    require_chat_template(tokenizer, train + val)
    ctx = context_length(model)
    after = env.limits.max_tokens if env.limits.max_turns > 1 else cfg.sampling.max_new_tokens
    what = "environment.max_tokens" if env.limits.max_turns > 1 else "sampling.max_new_tokens"
    prompt_ids: dict[str, list[int]] = {}
    for ex in train + val:
        ids = encode_prompt(tokenizer, ex)
        if len(ids) + (after or 0) > ctx:
            raise DataError(
                f"example {ex.id!r}: prompt is {len(ids)} tokens + {what}={after} > the model's context of {ctx}; "
                f"shorten the prompt, drop the row or lower {what}"
            )
        prompt_ids[ex.id] = ids
    if len(prompt_ids) != len(train) + len(val):
        raise DataError("example ids are not unique across train and validation; give every row a distinct 'id'")
    episodes = EpisodeRunner.of(env, tokenizer)
    if env.limits.max_turns > 1:
        for chat in {isinstance(e.prompt, list) for e in train + val}:
            try:
                episodes.fmt.check(chat)
            except ValueError as e:
                raise ConfigError(str(e)) from None
    return Session(cfg, model, tokenizer, path, train, val, spec, prompt_ids, episodes)


def check_rows(env: Any, examples: list[Example]) -> None:
    """Every row the environment can check without running an episode (``env.check_row``; sql_retry:
    its database opens as SQLite): a row it cannot run on is a data error now, not a run of zero
    rewards."""
    check_row = getattr(env, "check_row", None)
    for ex in examples if check_row is not None else []:
        try:
            check_row(ex)
        except ValueError as e:
            where = f" ({ex.where})" if ex.where else ""
            raise DataError(f"environment: example {ex.id!r}{where}: {e}; fix the row or drop it") from None


def check_environment(env: Any, example: Example) -> None:
    """Start one episode before anything runs: an environment that cannot start on the data (a missing
    field, a missing database) is a config error now, not a run of zero rewards."""
    try:
        env.reset(example)
    except Exception as e:  # noqa: BLE001 - shown to the user as a config problem
        raise ConfigError(f"environment: cannot start an episode on example {example.id!r}: {e}") from None
