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


DATASET_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def publish_to_datasets_cache(cache, repo_id, splits, config="default", commit=DATASET_COMMIT):
    """Put ``splits`` ({split: [row dicts]}) into a Hugging Face *datasets* cache as ``load_dataset(repo_id,
    config)`` leaves a hub dataset there once downloaded: ``ORG___NAME/<config>/0.0.0/<commit>/`` with
    ``dataset_info.json`` and ``NAME-<split>.arrow``, written by the library's own builder (a dataset
    builder of that repository id, prepared with ``download_and_prepare``). This is what ``datasets``
    reads offline (``HF_HUB_OFFLINE=1``: ``load_dataset`` falls back to this cache; the hub cache's
    ``datasets--ORG--NAME`` alone does not load offline). Returns the prepared directory."""
    from pathlib import Path

    import datasets
    import pyarrow as pa

    class HubRows(datasets.ArrowBasedBuilder):
        BUILDER_CONFIGS = [datasets.BuilderConfig(name=config)]

        def _info(self):
            return datasets.DatasetInfo()

        def _split_generators(self, dl_manager):
            return [datasets.SplitGenerator(name=s, gen_kwargs={"rows": rows}) for s, rows in splits.items()]

        def _generate_tables(self, rows):
            yield 0, pa.Table.from_pylist(rows)

    builder = HubRows(cache_dir=str(cache), dataset_name=repo_id.split("/")[-1], repo_id=repo_id,
                      config_name=config, hash=commit)
    builder.download_and_prepare()
    return Path(builder.cache_dir)
