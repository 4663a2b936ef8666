"""arith: two-digit addition as a verifiers environment (its v1 API, the layout of verifiers'
own `environments/`): a taskset that yields tasks, a task whose `@vf.reward` methods read only the
trace, so rft can score them offline.

    rft grade --grader '{"type": "verifiers", "environment": "configs/verifiers/arith_env.py"}' \
              --data configs/verifiers/train.jsonl --completions my_completions.jsonl
    rft train configs/verifiers.yaml

configs/verifiers/train.jsonl is this taskset's tasks written as rft rows (docs/integrations/verifiers.md).
"""

import random

import verifiers.v1 as vf


class ArithData(vf.TaskData):
    answer: str
    """The sum, as digits."""


class ArithTask(vf.Task[ArithData]):
    @vf.reward(weight=1.0)
    async def correct(self, trace: vf.Trace) -> float:
        return float(trace.last_reply == self.data.answer)

    @vf.reward(weight=0.2)
    async def digits_only(self, trace: vf.Trace) -> float:
        """Format: the reply is a number and nothing else."""
        reply = trace.last_reply
        return float(reply.isdigit() and len(reply) <= 4)

    @vf.metric
    async def reply_length(self, trace: vf.Trace) -> float:
        return float(len(trace.last_reply))


class ArithConfig(vf.TasksetConfig):
    num_examples: int = 300
    seed: int = 0


class ArithTaskset(vf.Taskset[ArithTask, ArithConfig]):
    def load(self):
        rng = random.Random(self.config.seed)
        for _ in range(self.config.num_examples):
            a, b = rng.randint(10, 99), rng.randint(10, 99)
            yield ArithTask(ArithData(prompt=f"{a}+{b}=", answer=str(a + b)), self.config.task)


__all__ = ["ArithTaskset"]
