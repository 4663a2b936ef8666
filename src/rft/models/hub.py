"""Models named by Hugging Face hub id (``model.path: ORG/NAME``, ``model.revision``), resolved the way
transformers resolves ``from_pretrained("ORG/NAME")``, to a local snapshot directory.

:func:`hub_id` decides whether a name is a hub id at all: exactly ``ORG/NAME`` of letters, digits,
``-``, ``_`` and ``.``, no ``..`` or ``--`` (``huggingface_hub.utils.validate_repo_id`` has the last
word). A name that starts with ``/``, ``.`` or ``~``, or has more than one ``/``, is a path and never
reaches the hub. The caller (:func:`rft.models.load.resolve_model_path`) checks for a local directory
first, so a directory named ``ORG/NAME`` in the working directory wins, as in transformers.

:func:`snapshot` calls ``huggingface_hub.snapshot_download`` into the standard cache: ``HF_HUB_CACHE``
(or ``HUGGINGFACE_HUB_CACHE``, or ``HF_HOME``/hub, or ``~/.cache/huggingface/hub``), with the token
from ``HF_TOKEN`` or ``hf auth login`` and a progress bar (files and bytes, even where the CLI
hides transformers' other bars). ``HF_HUB_OFFLINE=1`` (or
``TRANSFORMERS_OFFLINE=1``) reads the cache only. huggingface_hub reads these variables once, when it
is imported; rft reads them again at each resolution, so a notebook or test that sets them later is
honoured. A snapshot already cached is used when the hub cannot be reached (the library's fallback).
Not cached and unreachable: :class:`ModelError` in one line naming the id and the ``hf download``
command that fetches it ahead of time.

The download skips other frameworks' duplicate weights (``*.h5``, ``*.msgpack``, ONNX, GGUF,
``original/``); a repository with both ``*.bin`` and ``*.safetensors`` weights downloads both.
Not covered: ids without an organisation (``gpt2``: give ``openai-community/gpt2``), hub URLs,
datasets and spaces, and ``trust_remote_code`` models (rft loads only transformers' own classes).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from rft.models.cache import ModelError

_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
IGNORE = ["*.h5", "*.msgpack", "*.ot", "*.onnx", "*.onnx_data", "onnx/*", "*.gguf", "original/*", "*.tflite",
          "coreml/*", "openvino/*"]


def hub_id(name: str) -> bool:
    """Whether ``name`` is spelled as a hub model id ``ORG/NAME`` (not whether the hub has it)."""
    if not _HUB_ID.fullmatch(name) or ".." in name or "--" in name or name.endswith(".git"):
        return False
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE")


def offline() -> bool:
    """``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` as they are now (huggingface_hub's are frozen at import)."""
    from huggingface_hub import constants

    return constants.HF_HUB_OFFLINE or _flag("HF_HUB_OFFLINE") or _flag("TRANSFORMERS_OFFLINE")


def hub_cache() -> Path:
    """The hub cache directory, by huggingface_hub's precedence, from the environment as it is now."""
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE"):
        where = os.environ.get("HF_HUB_CACHE") or os.environ["HUGGINGFACE_HUB_CACHE"]
    elif os.environ.get("HF_HOME"):
        where = os.path.join(os.environ["HF_HOME"], "hub")
    else:
        where = constants.HF_HUB_CACHE
    return Path(os.path.expandvars(os.path.expanduser(where)))


def download_command(repo_id: str, revision: str | None = None) -> str:
    return f"hf download {repo_id}" + (f" --revision {revision}" if revision else "")


def snapshot(repo_id: str, revision: str | None = None) -> Path:
    """The local snapshot directory of hub model ``repo_id`` at ``revision`` (default ``main``),
    downloaded into the hub cache unless offline or already there."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from tqdm.auto import tqdm

    cache, off = hub_cache(), offline()
    at = f"@{revision}" if revision else ""
    try:
        path = snapshot_download(repo_id, revision=revision, cache_dir=cache, local_files_only=off,
                                 ignore_patterns=IGNORE, tqdm_class=tqdm)  # shown though rft hides other bars
    except LocalEntryNotFoundError:
        why = "HF_HUB_OFFLINE is set" if off else "the hub cannot be reached"
        raise ModelError(f"model.path={repo_id!r}{at}: not in the Hugging Face cache ({cache}) and {why}; fetch it "
                         f"first with `{download_command(repo_id, revision)}` where there is network "
                         "(same HF_HOME/HF_HUB_CACHE), or give a local model directory") from None
    except RevisionNotFoundError:
        raise ModelError(f"model.path={repo_id!r}: the hub has no revision {revision!r}; set model.revision to a "
                         "branch, tag or commit of that repository") from None
    except (RepositoryNotFoundError, GatedRepoError) as e:
        raise ModelError(f"model.path={repo_id!r}: the hub refused it ({type(e).__name__}: no such repository, or "
                         "a private/gated one); check the id, or set HF_TOKEN (`hf auth login`)") from None
    return Path(path)
