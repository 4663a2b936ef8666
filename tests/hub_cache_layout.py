"""A Hugging Face hub cache on disk, laid out as huggingface_hub lays out a download (not a mock of the hub:
huggingface_hub and transformers read it as they are). A module of its own, not conftest.py: tests
import it by name, and several conftest.py files share that name under pytest."""

import os


def publish_to_hub_cache(cache, repo_id, source_dir, ref="main"):
    """Put ``source_dir``'s files into a Hugging Face hub cache as huggingface_hub lays a download out:
    ``models--ORG--NAME/blobs/<sha256>``, ``snapshots/<commit>/<file>`` symlinks to them and
    ``refs/<ref>`` holding the commit (a 40-hex hash of the contents). Returns the commit."""
    import hashlib
    from pathlib import Path

    repo = Path(cache) / ("models--" + repo_id.replace("/", "--"))
    files = sorted(p for p in Path(source_dir).rglob("*") if p.is_file())
    commit = hashlib.sha1(b"".join(p.read_bytes() for p in files)).hexdigest()
    for p in files:
        blob = repo / "blobs" / hashlib.sha256(p.read_bytes()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(p.read_bytes())
        link = repo / "snapshots" / commit / p.relative_to(source_dir)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / ref).write_text(commit)
    return commit
