"""The typed run config: YAML validated once, at load, by pydantic with ``extra="forbid"``.

Every field is documented where it is declared. ``--set section.key=value`` overrides are applied
to the raw YAML before validation, so they are checked exactly like the file. Every error names the
field, the bad value and the fix (:class:`ConfigError`); the CLI prints it and exits with status 2.
The config is never written back to at run time: what ran is what ``config.yaml`` says.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from rft.environment_config import EnvironmentConfig, Strict  # Strict: every section's base
from rft.files import InputFileError, load_yaml, read_text
from rft.grader_specs import parse_spec
from rft.runs import MAX_NAME_CHARS, run_name_problem


class ConfigError(ValueError):
    """A config problem, phrased for the user: field, value, fix."""


class LoRAConfig(Strict):
    """Low-rank adapters (Hu et al. 2021, via peft): only the adapter is trained and checkpointed; the
    KL reference is the same weights with the adapter switched off, so no second copy is loaded."""

    r: int = Field(16, ge=1, description="adapter rank")
    alpha: float = Field(32.0, gt=0.0, description="scaling numerator: the update is (alpha / r) * B @ A")
    dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="dropout on the adapter input; SFT only (GRPO scores in eval mode)"
    )
    target_modules: str | list[str] = Field(
        "all-linear", description="module names to adapt (e.g. [q_proj, v_proj]) or 'all-linear' (every linear "
        "layer but the output head)"
    )


class ModelConfig(Strict):
    path: str = Field("embedded", description="local model directory, a Hugging Face hub id ORG/NAME (from the hub "
                      "cache or downloaded; HF_HUB_OFFLINE=1: cache only), a preset, or 'embedded' (the tiny model)")
    revision: str | None = Field(None, description="hub id only: branch, tag or commit to load; default main")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="dtype the weights are loaded and trained in"
    )
    device: str = Field("cpu", description="'cpu', 'cuda', 'cuda:N' or 'auto'")
    lora: LoRAConfig | None = Field(None, description="train LoRA adapters instead of all weights; null: full fine-tuning")

    @field_validator("lora")
    @classmethod
    def _peft_installed(cls, value: LoRAConfig | None) -> LoRAConfig | None:
        if value is not None and importlib.util.find_spec("peft") is None:
            raise ValueError("LoRA needs the peft package, which is not installed; `pip install 'rft[lora]'` "
                             "or set model.lora to null for full fine-tuning")
        return value


class TaskConfig(Strict):
    """A built-in task (``rft.tasks``). A field that names its tasks (``digits`` and ``ops``: arithmetic
    and word_problems; ``size``: reasoning_gym, which takes it instead of ``train_size``) set to a
    non-default value for another task is an error."""

    name: Literal["arithmetic", "word_problems", "sql", "json", "logic", "code", "reasoning_gym", "humaneval"] = Field(
        "arithmetic", description="the generator in rft.tasks.TASKS; each brings its own grader spec")
    digits: int = Field(2, ge=1, le=6, description="digits per operand (arithmetic, word_problems)")
    ops: list[Literal["+", "-", "*"]] = Field(
        default_factory=lambda: ["+"], description="operators (arithmetic; word_problems takes + and -)"
    )
    sloppy_rate: float = Field(
        0.0, ge=0.0, le=1.0,
        description="share of SFT labels written by the sloppy annotator (drops carries; arithmetic only)",
    )
    val_size: int = Field(500, ge=1, description="held-out problems, disjoint from the training ones")
    train_size: int | None = Field(
        None, ge=1,
        description="training examples; default: all remaining problems (arithmetic), up to 2000 (other tasks)",
    )
    dataset: str | None = Field(None, description="reasoning_gym: the dataset's name, e.g. chain_sum (required)")
    size: int | None = Field(None, ge=1, description="reasoning_gym: training entries generated (default 2000)")
    config: dict[str, Any] = Field(default_factory=dict, description="reasoning_gym: the dataset's config, as "
                                   "reasoning_gym.create_dataset takes it (size and seed are rft's)")
    chat: bool = Field(True, description="reasoning_gym, humaneval: prompts as a chat user turn; false: plain text "
                       "(models without a chat template, e.g. the embedded one)")
    max_prompt_chars: int | None = Field(None, ge=1, description="reasoning_gym, humaneval: drop examples whose "
                                         "prompt text is longer (a small context); default keep all")
    questions: Literal["terse", "natural"] = Field(
        "terse", description="sql: terse plain-text prompts for the char-level tiny model ('Names in IT older than "
        "40?'), or natural: chat prompts with the schema, several phrasings per intent, some intents held out "
        "(rft.tasks.sql_questions)")

    @model_validator(mode="after")
    def _arithmetic_fields_only_for_arithmetic(self) -> "TaskConfig":
        rg, both = ("reasoning_gym",), ("reasoning_gym", "humaneval")
        names = get_args(type(self).model_fields["name"].annotation)
        applies = {"digits": ("arithmetic", "word_problems"), "ops": ("arithmetic", "word_problems"),
                   "sloppy_rate": ("arithmetic",), "dataset": rg, "size": rg, "config": rg, "chat": both,
                   "max_prompt_chars": both, "questions": ("sql",), "train_size": tuple(n for n in names if n not in rg)}
        for key, tasks in applies.items():
            default = type(self).model_fields[key].get_default(call_default_factory=True)
            if self.name not in tasks and getattr(self, key) != default:
                raise ValueError(f"'{key}' applies only to the {' and '.join(tasks)} task(s), not to '{self.name}'; "
                                 f"remove data.task.{key}")
        if self.name == "reasoning_gym" and not self.dataset:
            raise ValueError("reasoning_gym needs data.task.dataset, a reasoning-gym dataset name, e.g. chain_sum")
        if self.name == "word_problems" and "*" in self.ops:
            raise ValueError("word_problems has '+' and '-' only; remove '*' from data.task.ops")
        return self


class DataConfig(Strict):
    task: TaskConfig | None = Field(None, description="a built-in procedural task; or give train_file")
    train_file: str | None = Field(
        None, description="examples with 'prompt' (text) or 'messages' (chat; OpenAI RFT JSONL) plus the grader's "
        "fields: a .jsonl file, a .json/.parquet/.csv file or a `datasets.save_to_disk` directory (needs rft[datasets])"
    )
    val_file: str | None = Field(
        None, description="held-out examples in the same formats; default: val_size rows split off train_file"
    )
    val_size: int = Field(200, ge=1, description="held out from train_file when there is no val_file")

    @model_validator(mode="after")
    def _one_source(self) -> "DataConfig":
        if (self.task is None) == (self.train_file is None):
            raise ValueError("give exactly one of data.task (a built-in task) or data.train_file (a JSONL file)")
        return self


class SamplingConfig(Strict):
    num_generations: int = Field(8, ge=1, description="G: completions sampled per prompt (one group)")
    temperature: float = Field(
        1.0, gt=0.0, description="sampling temperature; the loss scores log-probs at the same temperature"
    )
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="nucleus sampling mass; 1 disables it")
    top_k: int = Field(0, ge=0, description="0 disables top-k")
    max_new_tokens: int = Field(8, ge=1, description="completion length limit (a longer one is cut, finish 'length'); "
                                "also the constant normaliser of loss_type dr_grpo")
    backend: Literal["torch", "vllm"] = Field(
        "torch", description="rollout engine: the built-in sampler, or a colocated vLLM engine (CUDA; `pip install "
        "'rft[vllm]'`) whose weights are synced from the policy after each update"
    )
    vllm_gpu_memory_utilization: float = Field(
        0.3, gt=0.0, le=1.0, description="share of GPU memory vLLM may take (weights + KV cache); the policy, "
        "its optimizer and activations need the rest"
    )

    @field_validator("backend")
    @classmethod
    def _vllm_installed(cls, value: str) -> str:
        if value == "vllm" and importlib.util.find_spec("vllm") is None:
            raise ValueError("the vllm backend needs the vllm package, which is not installed; "
                             "`pip install 'rft[vllm]'` on a CUDA machine, or set sampling.backend to torch")
        return value


class DistributedConfig(Strict):
    """Used only under torchrun (``torchrun --nproc_per_node=N -m rft.cli train CONFIG``); see
    rft.distributed and docs/distributed.md. One process ignores this section."""

    fsdp: bool = Field(
        False, description="shard parameters, gradients and optimizer state (FSDP2) instead of replicating them (DDP)"
    )
    backend: Literal["auto", "gloo", "nccl"] = Field("auto", description="auto: nccl on CUDA, gloo on CPU")
    timeout_s: float = Field(1800.0, gt=0.0, description="how long a rank waits for the others at a collective")


class GRPOConfig(Strict):
    steps: int = Field(60, ge=1, description="rollout batches; each gives num_iterations optimizer updates")
    prompts_per_step: int = Field(16, ge=1, description="groups per step: the batch is prompts_per_step x G completions")
    lr: float = Field(3e-4, gt=0.0, description="AdamW peak learning rate")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW decoupled weight decay")
    warmup_steps: int = Field(0, ge=0, description="optimizer updates of linear warm-up")
    lr_schedule: Literal["constant", "linear", "cosine"] = Field(
        "constant", description="after warm-up: constant, or a linear / cosine decay to 0 at the last update "
        "(steps x num_iterations; rft.optim.lr_lambda)"
    )
    max_grad_norm: float = Field(1.0, gt=0.0, description="gradient clipping: the global L2 norm is scaled down to this")
    gradient_accumulation_steps: int = Field(1, ge=1, description="micro-batches per update; each holds whole groups")
    beta: float = Field(0.0, ge=0.0, description="KL coefficient (k3 estimator); 0 loads no reference model")
    epsilon: float = Field(0.2, gt=0.0, description="lower clip range of the ratio: 1 - epsilon")
    epsilon_high: float | None = Field(None, gt=0.0, description="upper clip range (DAPO clip-higher); default epsilon")
    num_iterations: int = Field(1, ge=1, description="mu: updates per rollout batch; old log-probs only when > 1")
    loss_type: Literal["grpo", "bnpo", "dr_grpo", "dapo"] = Field(
        "dapo", description="how per-token losses are aggregated (rft.grpo.loss): grpo sum_i mean_t l / N_seq "
        "(DeepSeekMath); bnpo sum l / tokens per micro-batch; dr_grpo sum l / (N_seq x max_new_tokens) (Dr. GRPO); "
        "dapo sum l / tokens of the whole step batch (DAPO, token-level)"
    )
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group", description="advantage A_i = r_i - mean(group r), divided by (std + 1e-4) of the group (group, "
        "DeepSeekMath), of the whole batch (batch), or not at all (none, Dr. GRPO); rft.grpo.advantages"
    )
    dynamic_sampling: bool = Field(
        False, description="DAPO dynamic sampling: drop groups whose G rewards are all equal (no signal) and refill "
        "the batch with fresh prompts"
    )
    max_refill_rounds: int = Field(
        3, ge=0, description="extra sampling rounds per step with dynamic_sampling; a batch still short after them "
        "is topped up with dropped groups"
    )
    control: Literal["none", "shuffled", "random"] = Field(
        "none", description="a control arm (rft.grpo.control): the link between completions and rewards destroyed "
        "before advantages -- shuffled permutes the step's rewards across the whole batch, random draws pass/fail "
        "at the step's pass rate; logged rewards stay the grader's. `rft train --control` runs one beside the real run"
    )
    max_nonfinite_steps: int = Field(
        3, ge=1, description="a step whose loss or gradient is NaN or inf is skipped (weights and optimizer untouched) "
        "with an alert; this many in a row stop the run with an error, the last checkpoint intact"
    )


class EvalConfig(Strict):
    every: int = Field(10, ge=1, description="validate every N steps (and before step 1)")
    size: int | None = Field(None, ge=1, description="validation examples used; default all")
    batch_size: int = Field(512, ge=1, description="prompts per greedy generation batch at validation")
    track_fields: list[str] = Field(
        default_factory=list, description="report the share of greedy answers equal to these example fields"
    )
    samples: int = Field(
        8, ge=0, description="n completions sampled per example (training sampler settings) for pass@k (unbiased "
        "estimator, k = 1, 2, 4 .. n) and maj@n at each validation; 0 turns sampled validation off"
    )
    sampled_size: int = Field(100, ge=1, description="validation examples used for the sampled metrics (the first N)")
    capability: bool = Field(
        True, description="capability guard: at each validation, the policy's NLL on a general-text set and its KL "
        "to the reference there (the start-of-run model)"
    )
    capability_file: str | None = Field(
        None, description="general text for the guard: .txt (paragraphs separated by blank lines) or .jsonl with "
        "'text'; default: the set shipped with rft"
    )
    capability_max_tokens: int = Field(256, ge=8, description="tokens kept per general-text paragraph")


class GradingConfig(Strict):
    workers: int = Field(
        0, ge=-1, description="grader worker processes: 0 in-process (cheap graders), -1 one per core, N"
    )
    timeout_s: float = Field(30.0, gt=0.0, description="per-grade wall-clock bound in workers; a hung grade scores 0")


class CheckpointConfig(Strict):
    every: int = Field(50, ge=1, description="save checkpoints/step_N every N steps (and at the last step)")
    keep_last: int = Field(2, ge=1, description="step checkpoints kept; older ones are pruned (best and latest stay)")


MonitorName = Literal["divergence", "length", "truncation", "repetition", "format", "kl_spike",
                      "entropy_collapse", "zero_signal", "capability"]


class MonitorsConfig(Strict):
    """Reward-hacking monitors during training (rft.safety.monitors states each rule). ``start`` is
    the mean of the first ``window`` steps, ``recent`` of the last ``window``."""

    enabled: bool = Field(True, description="run the monitors; alerts are printed and logged as type 'alert'")
    stop_on: list[MonitorName] = Field(
        default_factory=list, description="monitors whose alert ends the run (validated and checkpointed)"
    )
    window: int = Field(5, ge=1, description="steps averaged for the start and recent values")
    divergence_reward_rise: float = Field(0.1, gt=0.0, description="train reward rise (recent - start) that counts")
    divergence_min_val_gain: float = Field(
        0.02, description="held-out pass@1 gain since the first validation below which it counts as flat"
    )
    length_ratio: float = Field(2.0, gt=1.0, description="alert when recent mean completion length >= this x start")
    truncation_rise: float = Field(0.2, gt=0.0, description="alert when the truncated share rises by this")
    repetition_ngram: int = Field(4, ge=1, description="n of the repeated-n-gram share logged as 'repetition'")
    repetition_rise: float = Field(0.2, gt=0.0, description="alert when the repeated n-gram share rises by this")
    format_drop: float = Field(0.3, gt=0.0, description="alert when format compliance falls by this (format graders only)")
    kl_spike_ratio: float = Field(5.0, gt=1.0, description="alert when a step's KL > this x the previous window's mean")
    kl_min: float = Field(0.05, ge=0.0, description="...and above this absolute KL")
    entropy_ratio: float = Field(0.2, gt=0.0, lt=1.0, description="alert when recent entropy <= this x start")
    zero_signal_frac: float = Field(0.9, gt=0.0, le=1.0, description="zero-variance group share that counts as no signal")
    zero_signal_steps: int = Field(10, ge=1, description="...for this many consecutive steps")
    capability_nll_rise: float = Field(
        0.05, gt=0.0, description="alert when general-text NLL rises by this share of its start value (capability guard)"
    )
    capability_kl: float = Field(
        0.1, gt=0.0, description="...or when the policy's KL to the reference on general text exceeds this (nats/token)"
    )


class SFTConfig(Strict):
    steps: int = Field(2000, ge=1, description="optimizer steps of supervised warm start (rft sft)")
    batch_size: int = Field(64, ge=1, description="examples per step")
    lr: float = Field(1e-3, gt=0.0, description="AdamW learning rate (constant after warm-up)")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW decoupled weight decay")
    warmup_steps: int = Field(100, ge=0, description="steps of linear warm-up")
    max_grad_norm: float = Field(1.0, gt=0.0, description="gradient clipping: global L2 norm")
    eval_every: int = Field(250, ge=1, description="greedy validation every N steps (and at the end)")
    target_accuracy: float | None = Field(None, gt=0.0, le=1.0, description="stop once greedy val accuracy >= this")
    target_field: str = Field("reference", description="example field imitated (falls back to 'answer')")
    retry_share: float = Field(
        0.0, ge=0.0, le=1.0, description="share of rows shown as a procedural retry transcript (a wrong first turn, "
        "the environment's observation, then the target) when the environment makes them (sql_retry)"
    )


class Config(Strict):
    name: str = Field("run", description=f"the run directory's name, output_dir/name: letters, digits, '.', '_', '-' "
                      f"(not '.' or '..'), at most {MAX_NAME_CHARS} characters")
    output_dir: str = Field("runs", description="where run directories are made")
    report_to: list[Literal["tensorboard", "wandb"]] = Field(
        default_factory=lambda: ["tensorboard"],
        description="where metrics go besides metrics.jsonl: TensorBoard event files in the run directory, "
        "and/or Weights & Biases (needs `pip install wandb`; offline unless WANDB_MODE is set); [] for neither",
    )
    seed: int = Field(0, ge=0, le=2**63 - 1, description="seeds data splits, prompt order and sampling (a seed per group)")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads; default torch's choice")
    model: ModelConfig = Field(default_factory=ModelConfig, description="the policy (and the KL reference)")
    data: DataConfig = Field(default_factory=lambda: DataConfig(task=TaskConfig()), description="examples to train on")
    grader: dict[str, Any] | None = Field(
        None, description="grader spec, e.g. {type: math} (`rft config --graders` lists every type's fields); "
        "default: the task's own grader")
    grading: GradingConfig = Field(default_factory=GradingConfig, description="where and how long graders run")
    environment: EnvironmentConfig = Field(
        default_factory=EnvironmentConfig, description="episodes: one turn (single) or multi-turn environments"
    )
    sampling: SamplingConfig = Field(default_factory=SamplingConfig, description="rollouts: G, temperature, length")
    grpo: GRPOConfig = Field(default_factory=GRPOConfig, description="the GRPO update (rft.grpo.train)")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="validation on the held-out split")
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig, description="when checkpoints are saved")
    sft: SFTConfig = Field(default_factory=SFTConfig, description="the supervised warm start (rft sft, rft demo)")
    monitors: MonitorsConfig = Field(default_factory=MonitorsConfig, description="reward-hacking monitors")
    distributed: DistributedConfig = Field(default_factory=DistributedConfig, description="torchrun settings")

    @model_validator(mode="after")
    def _episodes_fit_their_turns(self) -> "Config":
        self.environment.check_room(self.sampling.max_new_tokens)
        return self

    @model_validator(mode="after")
    def _whole_groups(self) -> "Config":
        g = self.grpo
        if g.prompts_per_step % g.gradient_accumulation_steps:
            raise ValueError(
                f"grpo.prompts_per_step={g.prompts_per_step} is not divisible by "
                f"grpo.gradient_accumulation_steps={g.gradient_accumulation_steps}: each micro-batch must hold "
                "whole groups; make prompts_per_step a multiple of gradient_accumulation_steps"
            )
        return self

    @field_validator("name")
    @classmethod
    def _name_is_one_directory(cls, value: str) -> str:
        problem = run_name_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _run_dir_inside_output_dir(self) -> "Config":
        run_dir, root = self.run_dir, Path(self.output_dir)
        if run_dir.is_symlink() and root.resolve() not in run_dir.resolve().parents:
            raise ValueError(f"name {self.name!r}: {run_dir} is a symlink to {run_dir.resolve()}, outside output_dir "
                             f"{self.output_dir!r}; a run writes only inside output_dir, so pick another name")
        return self

    @field_validator("grader")
    @classmethod
    def _grader_spec_valid(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            parse_spec(value)  # checked now; kept as written, so config.yaml shows the spec the user gave
        return value

    @field_validator("report_to")
    @classmethod
    def _wandb_installed(cls, value: list[str]) -> list[str]:
        if "wandb" in value and importlib.util.find_spec("wandb") is None:
            raise ValueError("'wandb' needs the wandb package, which is not installed; `pip install wandb` "
                             "or remove wandb from report_to")
        return list(dict.fromkeys(value))

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


# -- loading ---------------------------------------------------------------------------------


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides; values are parsed as YAML (``0.1``, ``true``, ``[1, 2]``)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set grpo.beta=0.04")
        key, _, text = item.partition("=")
        try:
            value = load_yaml(text, f"--set {key}")
        except InputFileError as e:
            raise ConfigError(f"{e}; the value is parsed as YAML") from None
        node = raw
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: '{part}' is not a section")
            node = child
        node[parts[-1]] = value
    return raw


def _format_validation_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        value = e.get("input")
        if e["type"] == "extra_forbidden":
            lines.append(f"{loc}: unknown key (value {value!r}); check the spelling against `rft config` (prints every field)")
        elif e["type"] == "missing":
            lines.append(f"{loc}: required field is missing; add it")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            lines.append(f"{loc}: {msg}" if isinstance(value, dict) else f"{loc}: {msg} (got {value!r})")
    return "invalid config: " + "; ".join(lines)


def config_from_dict(raw: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_validation_error(e)) from None


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Load a YAML config (or the defaults when ``path`` is None) and apply ``--set`` overrides."""
    raw: Any = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist; pass the path of a YAML file")
        try:
            raw = load_yaml(read_text(path, "config file"), str(path)) or {}
        except InputFileError as e:
            raise ConfigError(str(e)) from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections (model:, data:, grpo:, ...)")
    return config_from_dict(apply_overrides(raw, overrides or []))
