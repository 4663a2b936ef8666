#!/usr/bin/env python
"""Create a tiny, randomly initialised GPT-2 style causal LM plus a character-level tokenizer.

Everything is built locally (nothing is fetched from the Hugging Face hub) and saved with
``save_pretrained`` into the directory given on the command line, so that TRL's GRPOTrainer
(or any other GRPO implementation) can load it with ``from_pretrained(<dir>)``.

The weights depend only on the seed and the library versions; the script prints a SHA-256 over
all parameters so that two builds can be compared.

Usage:
    python bench/trl_anchor/make_tiny_model.py OUT_DIR [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import string
import sys

# Never touch the network: the model and tokenizer are created from scratch.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast, set_seed  # noqa: E402

PAD, EOS, BOS, UNK = "<pad>", "<eos>", "<bos>", "<unk>"
SPECIAL_TOKENS = [PAD, EOS, BOS, UNK]  # ids 0, 1, 2, 3

# Model shape asked for by the benchmark.
N_LAYER = 4
N_EMBD = 256
N_HEAD = 4
N_POSITIONS = 128


def build_vocab() -> dict[str, int]:
    """Special tokens first, then one token per character.

    Characters: digits, lowercase and uppercase ASCII letters, ASCII punctuation (which contains
    ``+ - * =``) and the space.
    """
    chars: list[str] = []
    for ch in string.digits + "+-*= " + string.ascii_lowercase + string.ascii_uppercase + string.punctuation:
        if ch not in chars:
            chars.append(ch)
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for ch in chars:
        vocab[ch] = len(vocab)
    return vocab


def build_tokenizer() -> PreTrainedTokenizerFast:
    vocab = build_vocab()
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    # Every single character (whitespace included) is its own pre-token, hence its own token.
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    # Decoding concatenates the characters back (no spaces inserted between tokens).
    tok.decoder = decoders.Fuse()
    # Encoded text starts with <bos>, like most causal LMs; <eos> is produced by the model.
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A",
        pair=f"{BOS} $A $B",
        special_tokens=[(BOS, vocab[BOS])],
    )
    tok.add_special_tokens(SPECIAL_TOKENS)

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        padding_side="left",
        model_max_length=N_POSITIONS,
    )


def build_model(tokenizer: PreTrainedTokenizerFast, seed: int) -> GPT2LMHeadModel:
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=N_POSITIONS,
        n_embd=N_EMBD,
        n_layer=N_LAYER,
        n_head=N_HEAD,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    set_seed(seed)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    model.eval()
    # Keep the generation defaults consistent with the tokenizer.
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def weights_sha256(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", help="directory to write the model and tokenizer into")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    tokenizer = build_tokenizer()
    # Sanity check: the tokenizer is character level and round-trips the benchmark prompts.
    sample = "37+45=82"
    ids = tokenizer(sample)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and len(ids) == len(sample) + 1, ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == sample, tokenizer.decode(ids)

    model = build_model(tokenizer, args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    model.save_pretrained(args.out_dir)
    tokenizer.save_pretrained(args.out_dir)

    info = {
        "out_dir": args.out_dir,
        "seed": args.seed,
        "vocab_size": len(tokenizer),
        "n_params": sum(p.numel() for p in model.parameters()),
        "weights_sha256": weights_sha256(model),
        "torch_version": torch.__version__,
    }
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
