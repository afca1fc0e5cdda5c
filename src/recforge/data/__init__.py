"""Datasets: the container, readers for common formats, the named-dataset registry, splits."""

from recforge.data.dataset import Dataset, Fold, Interactions, dense_ids
from recforge.data.io import MissingDataFileError, open_text, read_bytes, read_text, resolve_data_file
from recforge.data.movielens import load_ml100k
from recforge.data.readers import (
    load_known_pickle,
    read_atomic,
    read_counted,
    read_derrd,
    read_gformer,
    read_id_list,
    read_item_attributes,
    read_lightgcn,
    read_ml1m_seq,
    read_sequences,
    read_table,
)
from recforge.data.registry import DATASETS, FORMATS, DatasetSpec, load_dataset, read_path, resolve_data_root
from recforge.data.split import Split

__all__ = [
    "DATASETS",
    "FORMATS",
    "Dataset",
    "DatasetSpec",
    "Fold",
    "Interactions",
    "MissingDataFileError",
    "Split",
    "dense_ids",
    "load_dataset",
    "load_known_pickle",
    "load_ml100k",
    "open_text",
    "read_atomic",
    "read_bytes",
    "read_counted",
    "read_derrd",
    "read_gformer",
    "read_id_list",
    "read_item_attributes",
    "read_lightgcn",
    "read_ml1m_seq",
    "read_path",
    "read_sequences",
    "read_table",
    "read_text",
    "resolve_data_file",
    "resolve_data_root",
]
