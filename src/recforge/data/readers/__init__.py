"""One reader per on-disk format; each returns a :class:`~recforge.data.dataset.Dataset`."""

from recforge.data.readers.atomic import read_atomic
from recforge.data.readers.counted import read_counted
from recforge.data.readers.derrd import read_derrd
from recforge.data.readers.gformer import read_gformer
from recforge.data.readers.known_pickle import load_known_pickle
from recforge.data.readers.lightgcn import read_id_list, read_lightgcn
from recforge.data.readers.ml1m_seq import read_ml1m_seq
from recforge.data.readers.sequences import read_item_attributes, read_sequences
from recforge.data.readers.tabular import read_table

__all__ = [
    "load_known_pickle",
    "read_atomic",
    "read_counted",
    "read_derrd",
    "read_gformer",
    "read_id_list",
    "read_item_attributes",
    "read_lightgcn",
    "read_ml1m_seq",
    "read_sequences",
    "read_table",
]
