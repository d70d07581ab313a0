"""Models shared on the Hugging Face Hub (or a mirror, or a self-hosted hub): `hf://owner/name[@revision]`.

- `reference`: reading `hf://owner/name@revision` (no network, no `huggingface_hub` import);
- `place`: which hub, cache, token and offline mode, from the environment as every Hub user sets them;
- `fetch`: pulling a model into the hub's standard cache: sizes checked before downloading, every file
  checked against the manifest's checksums before use, a refused snapshot removed from the cache;
- `card`: the model card (`README.md`) written from a model's manifest;
- `push`: uploading a model directory with its card.

`huggingface_hub` is imported only when a hub is used, so serving a folder never loads it.
"""
