"""Single-turn identity check: a short SFT + GRPO run on the embedded model at 1 thread, fixed seed, hashed.

Run it before and after a change that must not change what a run computes (a refactor, a speed-up that
claims exactness); the printed digests must be equal. Hashes: every metrics record without its timings
(rewards, losses, validations), the sample logs, and the final checkpoint's tensors.

    python bench/identity_check.py OUT_DIR [--hash-only]   # one JSON line of digests
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[1] / "src" / "rft" / "configs" / "demo.yaml"
COMMON = ["--set", "threads=1", "--set", "data.task.val_size=64", "--set", "seed=3"]


def rft(*args: str, out: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "rft.cli", *args, "--set", f"output_dir={out}"], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def digest(paths: list[Path], transform=lambda b: b) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(transform(p.read_bytes()))
    return h.hexdigest()[:16]


def untimed(raw: bytes) -> bytes:
    keep = []
    for line in raw.decode().splitlines():
        rec = json.loads(line)
        keep.append({k: v for k, v in rec.items() if not k.startswith("time/") and k not in ("time", "wall", "elapsed")
                     and "seconds" not in k and "per_s" not in k
                     and not k.endswith(("_s", "_ms"))})
    return json.dumps(keep, sort_keys=True).encode()


def main() -> None:
    out = Path(sys.argv[1]).resolve()
    if "--hash-only" not in sys.argv:
        run_both(out)
    print(json.dumps(digests(out / "id")))


def run_both(out: Path) -> None:
    rft("sft", str(CONFIG), *COMMON, "--set", "name=id", "--set", "sft.steps=120", "--set", "sft.eval_every=60",
        out=out)
    rft("train", str(CONFIG), *COMMON, "--set", "name=id", "--set", f"model.path={out / 'id-sft' / 'model'}",
        "--set", "grpo.steps=6", "--set", "eval.every=3", "--set", "checkpoint.every=6", "--set", "grpo.beta=0.04",
        out=out)


def digests(run: Path) -> dict:
    import torch
    from safetensors.torch import load_file

    ckpts = sorted((run / "checkpoints").glob("step_*"))
    tensors = load_file(str(next(ckpts[-1].rglob("*.safetensors"))))
    w = hashlib.sha256()
    for k in sorted(tensors):
        w.update(k.encode())
        w.update(tensors[k].to(torch.float32).numpy().tobytes())
    return {"metrics": digest([run / "metrics.jsonl"], untimed),
            "samples": digest(sorted((run / "samples").glob("*.jsonl"))),
            "weights": w.hexdigest()[:16], "checkpoint": ckpts[-1].name}


if __name__ == "__main__":
    main()
