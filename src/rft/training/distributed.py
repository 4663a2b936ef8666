"""Data-parallel GRPO under ``torchrun`` (torch.distributed): ranks, sharding, reductions, rank-0 writes.

Launch with ``torchrun --nproc_per_node=N -m rft.cli train CONFIG``. torchrun sets ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK``; without them the run is one process and every helper here is
the identity, so the single-process loop and the N-process loop are the same code. Backend: gloo
on CPU, nccl when ``model.device`` is CUDA (``distributed.backend`` overrides).

What each phase does with N ranks (W = world size):

* **rollout + grade**: every rank walks the same prompt cursor (same seed), so every rank knows the
  step's global prompt list; rank r samples and grades the r-th contiguous share of it (a group is
  never split). A group's sampling seed is derived from ``(seed, step, index of the prompt in the
  step)`` (:func:`group_seeds`), so the completions do not depend on W. The graded groups are
  then gathered to every rank (:meth:`Dist.gather`): advantages (``scale_rewards: batch`` needs
  the global std), metrics, monitors and samples are computed on the whole batch, exactly as one
  process computes them, and every rank takes the same decisions (validate, stop, checkpoint).
  Grader statistics are gathered too, each rank's sums merged by
  :meth:`rft.graders.stats.GraderStats.merge`. Each reduction lives beside the data it reduces
  (the update's in :mod:`rft.grpo.update`); this module holds the plain collectives.
* **update**: a step without signal (every advantage 0, the policy at the reference or beta 0;
  :func:`rft.grpo.update.has_signal`) is skipped only when no rank's share has signal
  (:meth:`Dist.any`), and then on every rank, so the replicas never drift apart. Otherwise each rank
  back-propagates its share with the loss normalised by counts of the *global* batch
  (:func:`rft.grpo.update.global_loss_norm`: sequences, completion tokens all-reduced,
  micro-batches x W), and gradients are **summed** across ranks (:meth:`Dist.sum_grads`: one all-reduce per
  optimizer step on the replicated model; FSDP with divide factor 1), so the update equals the
  single-process update on the global batch for every loss type. There is no DDP wrapper: the
  log-prob pass runs several forwards per backward (shared prompt prefixes, length buckets), and
  one explicit sum after the micro-batches is simpler than teaching DDP's reducer about that. Clipping runs after the sum: the norm is the global one. ``gradient_accumulation_steps``
  counts micro-batches per rank; for ``bnpo`` (mean per micro-batch) W ranks with k micro-batches
  match one process with k*W.
* **validation**: every rank runs the full greedy validation. The weights are identical on all
  ranks, so the results are too; this needs no messages when replicated and keeps FSDP's collectives in
  lock-step. Rank 0 writes the results.
* **writes**: only rank 0 writes (metrics, samples, TensorBoard, checkpoints, the report); the
  other ranks hold a :class:`FollowerRunDir` whose writes are no-ops and wait at barriers.
  ``--resume`` works unchanged: model, optimizer, RNG and cursor state are global (the same on
  every rank), and every rank reads the checkpoint rank 0 wrote.

FSDP (``distributed.fsdp: true``): FSDP2 ``fully_shard`` on each decoder layer and the root, so
parameters, gradients and AdamW state are sharded W ways. Rollout and validation gather the full
weights for their duration (:meth:`Dist.full_weights`), so the model must fit one device for
inference; what FSDP saves is the optimizer state and gradients (about 3x the weights in fp32).
Checkpoints gather full state dicts to rank 0. Tested on CPU/gloo; not measured on GPUs.

Not covered: multi-node runs need the run directory on a shared file system (every rank reads the
checkpoint on resume); tensor/pipeline parallelism; mixing FSDP with the vLLM backend.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterator

import torch
import torch.distributed as dist

from rft.config import Config, ConfigError
from rft.training.run_dir import RunDir


def group_seeds(seed: int, step: int, start: int, count: int) -> list[int]:
    """Sampling seeds of the prompts ``start .. start+count-1`` drawn at ``step``: a 63-bit hash of
    ``(seed, step, index)``, so a group's completions depend on neither the batch it shares nor
    the number of ranks, and a resumed run draws the same ones."""
    return [int.from_bytes(hashlib.blake2b(f"{seed}/{step}/{i}".encode(), digest_size=8).digest(), "little") >> 1
            for i in range(start, start + count)]


def is_main_process() -> bool:
    """Rank 0 (or no torchrun); readable before and after the process group exists."""
    return int(os.environ.get("RANK", "0")) == 0


@dataclass
class Dist:
    """This process's place in the job. ``Dist()`` is the single process: every method is the identity."""

    rank: int = 0
    world_size: int = 1
    fsdp: bool = False
    owns_group: bool = False  # this object initialised the process group and destroys it in close()

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- sharding and gathering --------------------------------------------------------------
    def shard(self, n: int) -> slice:
        """This rank's contiguous share of ``n`` items (``n`` must divide by the world size)."""
        if n % self.world_size:
            raise ValueError(f"{n} items do not split evenly over {self.world_size} ranks")
        k = n // self.world_size
        return slice(self.rank * k, (self.rank + 1) * k)

    def round_up(self, n: int) -> int:
        """``n`` rounded up to a multiple of the world size (refill rounds of dynamic sampling)."""
        return -(-n // self.world_size) * self.world_size

    def gather(self, items: list[Any]) -> list[Any]:
        """Concatenate every rank's list in rank order, on every rank (pickled: small objects only)."""
        if not self.enabled:
            return items
        parts: list[Any] = [None] * self.world_size
        dist.all_gather_object(parts, items)
        return [x for part in parts for x in part]

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on one (stop decisions must agree, or ranks deadlock)."""
        if not self.enabled:
            return flag
        t = torch.tensor([float(flag)], device=self._comm_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def _comm_device(self) -> torch.device:
        return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        """Every rank's ``values`` summed element-wise (in float64), on every rank."""
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(t)
        return t.tolist()

    # -- the update ----------------------------------------------------------------------------
    def shard_model(self, model: torch.nn.Module) -> None:
        """Under FSDP: shard the model in place (FSDP2 ``fully_shard`` on each decoder layer, then the
        root), with gradients summed rather than averaged. Call before building the optimizer: it
        must hold the sharded parameters. Without FSDP the model stays whole on every rank."""
        if not (self.enabled and self.fsdp):
            return
        from torch.distributed.fsdp import FSDPModule, fully_shard

        layers = getattr(getattr(model, "model", None), "layers", None)
        if layers is None:
            raise ConfigError("distributed.fsdp: the model has no `model.layers` (decoder blocks) to shard; "
                              "use a Llama/Qwen-style causal LM or set distributed.fsdp to false")
        for layer in layers:
            fully_shard(layer)
        fully_shard(model)
        for m in model.modules():  # both setters are per module
            if isinstance(m, FSDPModule):
                m.set_gradient_divide_factor(1.0)  # sum, as sum_grads does for replicated models
                m.set_force_sum_reduction_for_comms(True)  # plain SUM collectives (gloo has no PREMUL_SUM)

    def sum_grads(self, params: list[torch.Tensor]) -> None:
        """Sum the gradients of replicated parameters across ranks (in place, one all-reduce per
        ~64 MB bucket), once per optimizer step. The loss is normalised by the global batch
        (:func:`rft.grpo.update.global_loss_norm`), so the sum is the one-process gradient. A
        parameter without a gradient on this rank contributes zeros, so every rank sends the same
        buckets. FSDP reduces its own."""
        if not self.enabled or self.fsdp:
            return
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        bucket: list[torch.Tensor] = []
        size = 0
        for i, p in enumerate(params):
            bucket.append(p.grad)
            size += p.grad.numel() * p.grad.element_size()
            if size >= 64 * 2**20 or i == len(params) - 1:
                flat = torch.cat([g.reshape(-1) for g in bucket])
                dist.all_reduce(flat)
                offset = 0
                for g in bucket:
                    g.copy_(flat[offset : offset + g.numel()].view_as(g))
                    offset += g.numel()
                bucket, size = [], 0

    # -- FSDP: full weights for generation, full state dicts for checkpoints -------------------------
    @contextmanager
    def full_weights(self, model: torch.nn.Module) -> Iterator[None]:
        """Under FSDP: the full parameters on every rank for the block (generation runs rank-local
        forwards of different lengths, which sharded forwards, being collectives, cannot)."""
        if not (self.enabled and self.fsdp):
            yield
            return
        from torch.distributed.fsdp import FSDPModule

        sharded = [m for m in model.modules() if isinstance(m, FSDPModule)]  # unshard() is per module
        for m in sharded:
            m.set_reshard_after_forward(False, recurse=False)
            m.unshard()  # all-gather: every rank enters this block at the same point of the step
        try:
            yield
        finally:
            for m in sharded:
                m.reshard()
                m.set_reshard_after_forward(True, recurse=False)

    def checkpoint_states(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[Any, Any]:
        """(model state dict, optimizer state dict) to save: full ones gathered from the shards under
        FSDP (a collective: call on every rank), else (None, None) meaning "the objects' own"."""
        if not (self.enabled and self.fsdp):
            return None, None
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
            get_optimizer_state_dict,
        )

        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        model_state = get_model_state_dict(model, options=opts)
        seen: set[int] = set()
        for name, p in model.named_parameters(remove_duplicate=False):  # tied weights (lm_head = embeddings):
            if id(p) in seen:  # the gathered copies no longer share storage, so save_pretrained would
                model_state.pop(name, None)  # write both; keep the first name, as it does unsharded
            seen.add(id(p))
        return model_state, get_optimizer_state_dict(model, optimizer, options=opts)

    def load_optimizer_state(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: Any) -> None:
        if not (self.enabled and self.fsdp):
            optimizer.load_state_dict(state)
            return
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_optimizer_state_dict,
        )

        set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


class FollowerRunDir(RunDir):
    """The run directory as ranks other than 0 hold it: reads work (resume, monitor history), writes
    are skipped because rank 0 makes them."""

    def create(self, config_yaml: str, *, overwrite: bool) -> None:
        pass

    def log_metrics(self, record: dict[str, Any]) -> None:
        pass

    def truncate_metrics(self, last_step: int) -> None:
        pass

    def write_samples(self, name: str, rows: list[dict[str, Any]]) -> None:
        pass

    def prune_checkpoints(self, keep_last: int) -> None:
        pass

    def close(self) -> None:
        pass


def init_distributed(cfg: Config) -> Dist:
    """Join the torchrun job named by the environment (one process without it) and check that the
    config shards: every rank must get whole groups and whole micro-batches."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    g, d = cfg.grpo, cfg.distributed
    if g.prompts_per_step % world:
        raise ConfigError(
            f"grpo.prompts_per_step={g.prompts_per_step} does not divide by the {world} torchrun processes: every rank "
            f"takes an equal share of whole groups; make prompts_per_step a multiple of {world}")
    if (g.prompts_per_step // world) % g.gradient_accumulation_steps:
        raise ConfigError(
            f"grpo.gradient_accumulation_steps={g.gradient_accumulation_steps} does not divide the "
            f"{g.prompts_per_step // world} prompts each of the {world} ranks holds (prompts_per_step / world size); "
            "lower gradient_accumulation_steps (it counts micro-batches per rank) or raise prompts_per_step")
    if cfg.sampling.backend == "vllm" and d.fsdp:
        raise ConfigError("sampling.backend=vllm with distributed.fsdp=true is not supported; "
                          "use the torch backend with FSDP, or fsdp: false with vLLM")
    on_cuda = cfg.model.device.startswith("cuda") or (cfg.model.device == "auto" and torch.cuda.is_available())
    backend = d.backend if d.backend != "auto" else ("nccl" if on_cuda else "gloo")
    owns = not dist.is_initialized()
    if on_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if owns:
        dist.init_process_group(backend, timeout=timedelta(seconds=d.timeout_s))
    return Dist(rank=dist.get_rank(), world_size=dist.get_world_size(), fsdp=d.fsdp, owns_group=owns)


def save_checkpoint_on_main(ctx: Dist, run: RunDir, name: str, *, model: torch.nn.Module,
                            optimizer: torch.optim.Optimizer, **kwargs: Any) -> None:
    """rft.training.checkpoint.save_checkpoint, written by rank 0 only; the others wait until it is complete.
    Under FSDP every rank first takes part in gathering the full state dicts. A model holding NaN or
    inf (any rank's parameters or shard) is not saved: every rank raises NonFiniteError."""
    from rft.training.checkpoint import (
        NonFiniteError,
        nonfinite_parameters,
        save_checkpoint,
    )

    bad = nonfinite_parameters(model)
    if ctx.any(bool(bad)):
        latest = run.latest_checkpoint()
        raise NonFiniteError(f"checkpoint {name} not written: parameters {', '.join(bad) or '(on another rank)'} "
                             f"hold NaN or inf; the last good checkpoint ({latest or 'none yet'}) is intact "
                             "(lower grpo.lr, check the rewards)")
    model_state, optimizer_state = ctx.checkpoint_states(model, optimizer)
    if ctx.is_main:
        save_checkpoint(run, name, model=model, optimizer=optimizer, model_state=model_state,
                        optimizer_state=optimizer_state, **kwargs)
    ctx.barrier()
