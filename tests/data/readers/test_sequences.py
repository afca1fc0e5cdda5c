"""Tests of the S3-Rec sequence reader (u i i ... in time order, 1-based ids)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recforge.data.readers.sequences import read_item_attributes, read_sequences
from recforge.errors import ConfigError, DataFormatError


def write(path, text):
    path.write_text(text)
    return path


def test_beauty_counts_match_the_readme(shared_data):
    directory = shared_data / "s3rec-beauty"
    attributes_file = directory / "Beauty_item2attributes.json"
    dataset = read_sequences(directory / "Beauty.txt", item_attributes=attributes_file)
    assert (dataset.num_users, dataset.num_items, len(dataset.interactions)) == (22_363, 12_101, 198_502)
    lengths = np.bincount(dataset.interactions.users)
    assert (lengths.min(), lengths.max()) == (5, 204)
    assert dataset.user_ids[0] == "1"  # raw ids are the 1-based file ids
    assert dataset.item_ids[0] == "1"
    attributes = dataset.item_features["attributes"]
    assert attributes.shape[0] == 12_101
    assert attributes.max() == 637
    assert attributes.min() == 0  # 0 is padding
    assert dataset.fold is None


def test_toys_counts_match_the_readme(shared_data):
    dataset = read_sequences(shared_data / "s3rec-toys" / "Toys_and_Games.txt.gz")
    assert (dataset.num_users, dataset.num_items, len(dataset.interactions)) == (19_412, 11_924, 167_597)
    assert dataset.name == "Toys_and_Games"


def test_ids_shift_and_timestamps_are_positions(tmp_path):
    dataset = read_sequences(write(tmp_path / "seq.txt", "1 3 1 2\n2 2 3\n"))
    assert dataset.interactions.users.tolist() == [0, 0, 0, 1, 1]
    assert dataset.interactions.items.tolist() == [2, 0, 1, 1, 2]
    assert dataset.interactions.timestamps.tolist() == [0, 1, 2, 0, 1]
    assert dataset.interactions.timestamps.dtype == np.int64
    indptr, items = dataset.sequences()
    assert items[indptr[0]:indptr[1]].tolist() == [2, 0, 1]  # chronological = file order
    assert dataset.item_ids.tolist() == ["1", "2", "3"]


def test_zero_based_file(tmp_path):
    dataset = read_sequences(write(tmp_path / "seq.txt", "0 0 1\n1 1\n"), id_base=0)
    assert dataset.user_ids.tolist() == ["0", "1"]
    assert dataset.item_ids.tolist() == ["0", "1"]


def test_user_on_two_lines_continues_counting(tmp_path):
    dataset = read_sequences(write(tmp_path / "seq.txt", "1 1 2\n2 1\n1 3\n"))
    assert dataset.interactions.timestamps.tolist() == [0, 1, 0, 2]
    assert any("1 users have more than one line" in note for note in dataset.notes)


def test_id_below_base(tmp_path):
    with pytest.raises(DataFormatError, match=r"seq\.txt:2: field 'item_id': id 0 is below 1 "
                       r"\(id_base is 1\)"):
        read_sequences(write(tmp_path / "seq.txt", "1 1 2\n2 0 3\n"))


def test_malformed_token(tmp_path):
    with pytest.raises(DataFormatError, match=r"seq\.txt:1: field 'user_id': expected a non-negative "
                       r"integer, got 'u1'"):
        read_sequences(write(tmp_path / "seq.txt", "u1 1 2\n"))


def test_attributes_padded_with_zero(tmp_path):
    attributes_file = write(tmp_path / "attrs.json", json.dumps({"1": [4, 4], "3": [7, 8, 9]}))
    attributes, notes = read_item_attributes(attributes_file, num_items=3)
    assert attributes.tolist() == [[4, 4, 0], [0, 0, 0], [7, 8, 9]]
    assert notes == ["attrs.json: 1 items have no attributes (rows of padding)"]


def test_attribute_item_outside_the_sequences(tmp_path):
    attributes_file = write(tmp_path / "attrs.json", json.dumps({"1": [1], "9": [2]}))
    with pytest.raises(DataFormatError, match=r"attrs\.json: field 'item_id': item 9 is not in the sequence "
                       r"file \(ids 1\.\.3\)"):
        read_item_attributes(attributes_file, num_items=3)


def test_attribute_zero_is_rejected(tmp_path):
    attributes_file = write(tmp_path / "attrs.json", json.dumps({"1": [0, 2]}))
    with pytest.raises(DataFormatError, match=r"field 'attributes': item 1: expected a list of positive"):
        read_item_attributes(attributes_file, num_items=3)


def test_attributes_not_json(tmp_path):
    with pytest.raises(DataFormatError, match=r"attrs\.json:2: not valid JSON"):
        read_item_attributes(write(tmp_path / "attrs.json", '{"1": [1],\n oops}'), num_items=1)


@pytest.mark.parametrize(("id_base", "shown"),
                         [("abc", r"'abc' \(str\)"), (True, r"True \(bool\)"), (2, "2")])
def test_id_base_is_checked(tmp_path, id_base, shown):
    """Issue 10, defect 2: id_base=abc used to be a numpy ufunc error."""
    path = write(tmp_path / "seq.txt", "1 1 2\n")
    with pytest.raises(ConfigError,
                       match=rf"read_sequences: option 'id_base' must be the int 0 or 1, got {shown}"):
        read_sequences(path, id_base=id_base)


def test_huge_id_is_refused(tmp_path):
    with pytest.raises(DataFormatError, match=r"seq\.txt:2: field 'item_id': id 1099511627776 is too large"):
        read_sequences(write(tmp_path / "seq.txt", f"1 1 2\n2 {2**40}\n"))


def test_counted_shape_is_refused_unless_confirmed(tmp_path):
    path = write(tmp_path / "seq.txt", "2 5 6\n1 7\n3 1 2 3\n")
    with pytest.raises(DataFormatError, match=r"seq\.txt: every line's first field equals the number of ids "
                       r"after it"):
        read_sequences(path, id_base=0)
    assert read_sequences(path, id_base=0, assume_user_ids=True).num_users == 4


def test_attribute_key_given_twice(tmp_path):
    attributes_file = write(tmp_path / "attrs.json", '{"1": [1],\n "2": [2],\n "1": [3]}')
    with pytest.raises(DataFormatError, match=r"attrs\.json:3: field 'item_id': item 1 appears twice"):
        read_item_attributes(attributes_file, num_items=2)


@pytest.mark.parametrize("values", ["[true]", "[100000000000000000000000]", "{}", "[1.0]"])
def test_attribute_values_must_be_positive_int64(tmp_path, values):
    attributes_file = write(tmp_path / "attrs.json", f'{{"1": {values}}}')
    with pytest.raises(DataFormatError, match=r"field 'attributes': item 1: expected a list of positive"):
        read_item_attributes(attributes_file, num_items=1)


def test_attribute_item_given_twice_under_two_spellings(tmp_path):
    attributes_file = write(tmp_path / "attrs.json", '{"1": [1],\n "01": [3]}')
    with pytest.raises(DataFormatError,
                       match=r"attrs\.json:2: field 'item_id': item 01 appears twice \(also as 1\)"):
        read_item_attributes(attributes_file, num_items=2)


def test_attribute_table_too_large_to_pad(tmp_path):
    attributes_file = write(tmp_path / "attrs.json", json.dumps({"1": list(range(1, 3_000))}))
    with pytest.raises(DataFormatError, match=r"field 'attributes': the longest list \(2999 ids\) would "
                       r"make a padded table of 299,900,000 cells"):
        read_item_attributes(attributes_file, num_items=100_000)
