"""Title embeddings: offline, unit norm, meaningful, cached by content, and titles missing handled."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import recforge.data.text as text
from recforge.data.text import encode_item_texts, item_texts
from recforge.errors import RecforgeError

TITLES = ["Toy Story", "Toy Story 2", "Schindler's List", "Star Wars: Episode IV - A New Hope", ""]
IDS = ["1", "2", "3", "4", "5"]


def test_missing_titles_fall_back_to_the_raw_id_and_are_counted():
    texts, missing = item_texts(["A", " ", ""], ["a", "b", "c"])
    assert texts == ["A", "item b", "item c"]
    assert missing == 2
    with pytest.raises(RecforgeError, match="2 titles for 3 items"):
        item_texts(["A", "B"], ["a", "b", "c"])


@pytest.fixture(scope="module")
def encoded(tmp_path_factory) -> tuple[text.EncodedTexts, Path]:
    cache = tmp_path_factory.mktemp("cache")
    return encode_item_texts(TITLES, IDS, cache=cache, progress=False), cache


def test_embeddings_are_unit_vectors_that_know_what_titles_mean(encoded):
    result, _ = encoded
    embeddings = result.embeddings
    assert embeddings.shape == (5, 384)
    assert embeddings.dtype == torch.float32
    assert torch.allclose(embeddings.norm(dim=1), torch.ones(5), atol=1e-5)
    similarity = embeddings @ embeddings.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2  # a sequel is nearer than another film
    assert any("1 of 5 items have no title" in note for note in result.notes)


def test_the_cache_answers_the_same_titles_without_the_encoder(encoded, monkeypatch):
    result, cache = encoded
    assert len(list(cache.glob("*.safetensors"))) == 1

    def no_encoder(name: str) -> None:
        raise AssertionError("the encoder was loaded for cached titles")

    monkeypatch.setattr(text, "_load_encoder", no_encoder)
    again = encode_item_texts(TITLES, IDS, cache=cache, progress=False)
    assert torch.equal(again.embeddings, result.embeddings)
    assert any("read from the cache" in note for note in again.notes)
    with pytest.raises(AssertionError, match="encoder was loaded"):  # a changed title is a new entry
        encode_item_texts([*TITLES[:4], "Heat"], IDS, cache=cache, progress=False)


def test_a_damaged_cache_entry_is_encoded_again(encoded):
    result, cache = encoded
    (entry,) = cache.glob("*.safetensors")
    entry.write_bytes(b"not safetensors")
    again = encode_item_texts(TITLES, IDS, cache=cache, progress=False)
    assert torch.allclose(again.embeddings, result.embeddings, atol=1e-5)
    assert any("cached in" in note for note in again.notes)


def test_an_unknown_encoder_is_refused():
    with pytest.raises(RecforgeError, match="unknown text encoder 'bert'"):
        encode_item_texts(["A"], ["a"], encoder="bert")
