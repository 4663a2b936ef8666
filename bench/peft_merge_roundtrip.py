#!/usr/bin/env python
"""peft merge_adapter/unmerge_adapter on the bf16 SmolLM2 base with r=16 adapters (B random, as after training):
how many base weight elements come back different after merge+unmerge (why rft folds the adapters into
the decode step's own weight copy instead). Run: PYTHONPATH=src python bench/peft_merge_roundtrip.py"""
import torch
from rft.models.load import load_model, resolve_model_path
from rft.models.compat import peft_wrapping
from peft import LoraConfig, get_peft_model
torch.manual_seed(0)
m = load_model(resolve_model_path("smollm2-135m-instruct")).to(torch.bfloat16)
with peft_wrapping():
    w = get_peft_model(m, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"), autocast_adapter_dtype=False).eval()
with torch.no_grad():
    for n, p in w.named_parameters():
        if "lora_B" in n:
            p.normal_(0.0, 0.02)
before = {n: p.detach().clone() for n, p in w.named_parameters() if "base_layer" in n}
w.merge_adapter(); w.unmerge_adapter()
after = dict(w.named_parameters())
diff = sum(int((after[n] != v).sum()) for n, v in before.items()); tot = sum(v.numel() for v in before.values())
mx = max(float((after[n].float() - v.float()).abs().max()) for n, v in before.items())
print(f"peft merge+unmerge, bf16: {diff}/{tot} base elements changed ({100*diff/tot:.1f} %), largest change {mx:.3g}")
