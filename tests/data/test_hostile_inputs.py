"""Hostile inputs against every reader: each must give a RecforgeError naming the file, the line and
the field (or load exactly what a clean file loads), never a Python traceback or a silent misreading.

Each case writes its files under ``tmp_path``, calls one reader, and either expects an error (type and
a message fragment, searched as a regular expression) or checks what was loaded.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from recforge.data import readers, registry
from recforge.data.dataset import Dataset
from recforge.data.io import MissingDataFileError
from recforge.errors import ConfigError, DataFormatError, RecforgeError

Writer = Callable[[Path], None]
BINARY_GARBAGE = bytes(range(256)) * 4


def parquet(frame: dict[str, object] | pl.DataFrame) -> Writer:
    def write(path: Path) -> None:
        (frame if isinstance(frame, pl.DataFrame) else pl.DataFrame(frame)).write_parquet(path)

    return write


def npz(matrix: object | None = None, **arrays: object) -> Writer:
    def write(path: Path) -> None:
        if matrix is not None:
            sp.save_npz(path, matrix)
        else:
            with path.open("wb") as handle:
                np.savez(handle, **arrays)

    return write


def npz_with_unknown_compression(path: Path) -> None:
    """A scipy .npz whose zip members claim compression method 99 (zipfile: NotImplementedError)."""
    sp.save_npz(path, sp.coo_matrix(np.eye(2)))
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        start = data.find(signature)
        while start >= 0:
            data[start + offset : start + offset + 2] = (99).to_bytes(2, "little")
            start = data.find(signature, start + 1)
    path.write_bytes(bytes(data))


def directory(path: Path) -> None:
    path.mkdir()


def eye_npz(n: int = 2) -> dict[str, Writer | bytes]:
    return {f"d/{stem}.npz": npz(sp.coo_matrix(np.eye(n))) for stem in ("trnMat", "valMat", "tstMat")}


def known_ml1m_pickle(tmp_path: Path) -> None:
    """A small but valid dataset.pkl and a MANIFEST.tsv beside the data that vouches for it."""
    payload = {"train": {0: [0]}, "val": {0: [1]}, "test": {0: [0]}, "umap": {1: 0}, "smap": {1: 0, 2: 1}}
    (tmp_path / "ml").mkdir()
    (tmp_path / "ml" / "dataset.pkl").write_bytes(pickle.dumps(payload))
    sha = hashlib.sha256((tmp_path / "ml" / "dataset.pkl").read_bytes()).hexdigest()
    (tmp_path / "MANIFEST.tsv").write_text(f"file\tuncompressed_sha256\nml/dataset.pkl\t{sha}\n")


def known_gformer_pickles(tmp_path: Path) -> None:
    """trnMat/valMat/tstMat.pkl that a MANIFEST.tsv beside them vouches for."""
    (tmp_path / "g").mkdir()
    rows = ["file\tuncompressed_sha256"]
    for stem in ("trnMat", "valMat", "tstMat"):
        path = tmp_path / "g" / f"{stem}.pkl"
        path.write_bytes(pickle.dumps(sp.coo_matrix(np.eye(2))))
        rows.append(f"g/{stem}.pkl\t{hashlib.sha256(path.read_bytes()).hexdigest()}")
    (tmp_path / "MANIFEST.tsv").write_text("\n".join(rows) + "\n")


@dataclass(frozen=True)
class Case:
    """One hostile input: the files to write, the call, and what must come of it.

    ``files`` maps a path under tmp_path to its bytes, or to a function writing it; ``setup`` writes
    anything else. With ``error`` set, the call must raise it with a message matching ``match``;
    without, ``check`` must hold for the loaded dataset.
    """

    id: str
    call: Callable[[Path], object]
    files: dict[str, bytes | Writer] = field(default_factory=dict)
    error: type[Exception] | None = DataFormatError
    match: str = ""
    check: Callable[[Dataset], bool] | None = None
    setup: Callable[[Path], None] | None = None


def table(file: str = "r.csv", **options: object) -> Callable[[Path], object]:
    return lambda tmp: readers.read_table(tmp / file, **options)


def atomic(file: str = "x.inter", **options: object) -> Callable[[Path], object]:
    return lambda tmp: readers.read_atomic(tmp / file, **options)


def lightgcn(file: str = "train.txt", test: str | None = None, **options: object) -> Callable[[Path], object]:
    return lambda tmp: readers.read_lightgcn(tmp / file, None if test is None else tmp / test, **options)


def sequences(file: str = "s.txt", **options: object) -> Callable[[Path], object]:
    return lambda tmp: readers.read_sequences(tmp / file, **options)


def counted(file: str = "c.txt", **options: object) -> Callable[[Path], object]:
    return lambda tmp: readers.read_counted(tmp / file, **options)


def users_are(*raw: str) -> Callable[[Dataset], bool]:
    return lambda dataset: dataset.user_ids.tolist() == list(raw)


def items_are(*raw: str) -> Callable[[Dataset], bool]:
    return lambda dataset: dataset.item_ids.tolist() == list(raw)


CSV = b"user_id,item_id\na,x\nb,y\n"
HUGE = str(2**40).encode()

CASES = [
    # --- CSV / TSV tables -----------------------------------------------------------------------------
    Case("csv-empty-file", table(), {"r.csv": b""}, match=r"r\.csv: empty file"),
    Case("csv-blank-lines-only", table(), {"r.csv": b"\n\n \n"}, match=r"r\.csv: empty file"),
    Case("csv-header-only", table(), {"r.csv": b"user_id,item_id\n"}, match=r"r\.csv: the table has no rows"),
    Case("csv-bom", table(), {"r.csv": b"\xef\xbb\xbf" + CSV}, error=None, check=users_are("a", "b")),
    Case("csv-crlf", table(), {"r.csv": CSV.replace(b"\n", b"\r\n")}, error=None, check=items_are("x", "y")),
    Case("csv-not-really-gzip", table("r.csv.gz"), {"r.csv.gz": CSV}, error=None, check=users_are("a", "b")),
    Case("csv-corrupt-gzip", table(), {"r.csv.gz": b"\x1f\x8b" + BINARY_GARBAGE},
         match=r"r\.csv\.gz: corrupt or truncated gzip"),
    Case("csv-truncated-gzip", table(), {"r.csv.gz": gzip.compress(CSV * 50)[:40]},
         match=r"r\.csv\.gz: corrupt or truncated gzip"),
    Case("csv-binary-garbage", table(), {"r.csv": b"user_id,item_id\n" + BINARY_GARBAGE},
         match=r"r\.csv:2: .*NUL byte"),
    Case("csv-latin-1", table(), {"r.csv": b"user_id,item_id\na,x\nb,caf\xe9\n"},
         match=r"r\.csv:3: not valid utf-8"),
    Case("csv-nul-in-id", table(), {"r.csv": b"user_id,item_id\na,x\nb\x00,y\n"},
         match=r"r\.csv:3: .*NUL byte"),
    Case("csv-directory", table(), {"r.csv": directory}, match=r"r\.csv: .*is a directory"),
    Case("csv-missing", table(), error=MissingDataFileError, match=r"r\.csv: no such file"),
    Case("csv-duplicate-column", table(), {"r.csv": b"user_id,item_id,user_id\na,x,b\n"},
         match=r"r\.csv:1: field 'user_id': .*twice"),
    Case("csv-row-too-long", table(), {"r.csv": b"user_id,item_id\na,x\nb,y,z\n"},
         match=r"r\.csv:3: expected 2 fields .*got 3"),
    Case("csv-row-too-short", table(), {"r.csv": b"user_id,item_id,rating\na,x,1\nb,y\n"},
         match=r"r\.csv:3: expected 3 fields .*got 2"),
    Case("csv-ragged-after-quoted-newline", table(),
         {"r.csv": b'user_id,item_id,note\na,x,"two\nlines"\nb,y\n'}, match=r"r\.csv:4: expected 3 fields"),
    Case("csv-quoted-newline-loads", table(), {"r.csv": b'user_id,item_id,note\na,x,"two\nlines"\nb,y,z\n'},
         error=None, check=users_are("a", "b")),
    Case("csv-row-of-separators", table(), {"r.csv": b"user_id,item_id\na,x\n,\n"},
         match=r"r\.csv:3: field 'user_id': empty value"),
    Case("csv-nan-user", table(), {"r.csv": b"user_id,item_id\na,x\nNaN,y\n"},
         match=r"r\.csv:3: field 'user_id': 'NaN' marks a missing value"),
    Case("csv-nan-item-lowercase", table(), {"r.csv": b"user_id,item_id\na,nan\n"},
         match=r"r\.csv:2: field 'item_id': 'nan' marks a missing value"),
    Case("csv-null-user", table(), {"r.csv": b"user_id,item_id\nNULL,x\n"},
         match=r"r\.csv:2: field 'user_id': 'NULL' marks a missing value"),
    Case("tsv-nan-user", table("r.tsv"), {"r.tsv": b"user_id\titem_id\na\tx\n-nan\ty\n"},
         match=r"r\.tsv:3: field 'user_id': '-nan' marks a missing value"),
    Case("csv-nan-rating", table(rating="r"), {"r.csv": b"user_id,item_id,r\na,x,1\nb,y,NaN\n"},
         match=r"r\.csv:3: field 'r': expected a finite number, got 'NaN'"),
    Case("csv-nan-timestamp", table(timestamp="t"), {"r.csv": b"user_id,item_id,t\na,x,nan\n"},
         match=r"r\.csv:2: field 't': expected a finite number"),
    Case("csv-inf-timestamp", table(timestamp="t"), {"r.csv": b"user_id,item_id,t\na,x,1\nb,y,inf\n"},
         match=r"r\.csv:3: field 't': expected a finite number"),
    Case("csv-huge-timestamp", table(timestamp="t"), {"r.csv": b"user_id,item_id,t\na,x,1e400\n"},
         match=r"r\.csv:2: field 't': expected a finite number"),
    # --- reader options -------------------------------------------------------------------------------
    Case("option-separator-tab-by-name", table("r.tsv", separator="tab"),
         {"r.tsv": b"user_id\titem_id\na\tx\n"},
         error=None, check=items_are("x")),
    Case("option-separator-unknown", table(separator="tabs"), {"r.csv": CSV}, error=ConfigError,
         match=r"read_table: option 'separator' .*tab, comma, semicolon, space, pipe.*got 'tabs'"),
    Case("option-separator-quote", table(separator='"'), {"r.csv": CSV}, error=ConfigError,
         match=r"read_table: option 'separator'"),
    Case("option-integer-column-name", table(user=1, item=2), {"r.csv": b"1,2\na,x\n"}, error=None,
         check=users_are("a")),
    Case("option-column-name-float", table(user=1.5), {"r.csv": CSV}, error=ConfigError,
         match=r"read_table: option 'user' must be a column name .*got 1\.5 \(float\)"),
    Case("option-column-name-bool", table(rating=True), {"r.csv": CSV}, error=ConfigError,
         match=r"read_table: option 'rating' must be a column name"),
    Case("option-separator-on-parquet", table("r.parquet", separator=";"),
         {"r.parquet": parquet({"user_id": ["a"], "item_id": ["x"]})}, error=ConfigError,
         match=r"read_table: option 'separator' applies to CSV/TSV"),
    Case("option-id-base-text", sequences(id_base="abc"), {"s.txt": b"1 1 2\n"}, error=ConfigError,
         match=r"read_sequences: option 'id_base' must be the int 0 or 1, got 'abc' \(str\)"),
    Case("option-id-base-bool", sequences(id_base=True), {"s.txt": b"1 1 2\n"}, error=ConfigError,
         match=r"read_sequences: option 'id_base' must be the int 0 or 1, got True \(bool\)"),
    Case("option-id-base-two", sequences(id_base=2), {"s.txt": b"2 2 3\n"}, error=ConfigError,
         match=r"read_sequences: option 'id_base' must be the int 0 or 1, got 2"),
    Case("option-name-list", sequences(name=["x"]), {"s.txt": b"1 1 2\n"}, error=ConfigError,
         match=r"read_sequences: option 'name' must be"),
    Case("option-path-int", lambda tmp: readers.read_lightgcn(tmp / "train.txt", 3), {"train.txt": b"0 1\n"},
         error=ConfigError, match=r"read_lightgcn: option 'test_path' must be a path"),
    Case("option-encoding-unknown", atomic(encoding="klingon"),
         {"x.inter": b"user_id:token\titem_id:token\n"},
         error=ConfigError, match=r"read_atomic: option 'encoding': unknown encoding 'klingon'"),
    Case("option-format-not-text", lambda tmp: registry.read_path(tmp / "r.csv", format=3), {"r.csv": CSV},
         error=ConfigError, match=r"option 'format' must be"),
    Case("option-root-not-a-path", lambda tmp: registry.load_dataset("gowalla", root=7), error=ConfigError,
         match=r"option 'root' must be a path"),
    Case("option-ml100k-path-not-a-path", lambda tmp: registry.load_dataset("ml-100k", path=1.5),
         error=ConfigError, match=r"load_ml100k: option 'path' must be a path"),
    # --- Parquet --------------------------------------------------------------------------------------
    Case("parquet-garbage", table("r.parquet"), {"r.parquet": b"PAR1" + BINARY_GARBAGE + b"PAR1"},
         match=r"r\.parquet: cannot read the table"),
    Case("parquet-empty-file", table("r.parquet"), {"r.parquet": b""},
         match=r"r\.parquet: cannot read the table"),
    Case("parquet-no-rows", table("r.parquet"),
         {"r.parquet": parquet(pl.DataFrame(schema={"user_id": pl.String, "item_id": pl.String}))},
         match=r"r\.parquet: the table has no rows"),
    Case("parquet-list-user", table("r.parquet"),
         {"r.parquet": parquet({"user_id": [[1, 2]], "item_id": ["x"]})},
         match=r"r\.parquet: field 'user_id': column has type List\(Int64\)"),
    Case("parquet-struct-item", table("r.parquet"),
         {"r.parquet": parquet({"user_id": ["a"], "item_id": [{"k": 1}]})},
         match=r"r\.parquet: field 'item_id': column has type Struct"),
    Case("parquet-list-timestamp", table("r.parquet", timestamp="t"),
         {"r.parquet": parquet({"user_id": ["a"], "item_id": ["x"], "t": [[1]]})},
         match=r"r\.parquet: field 't': column has type List"),
    Case("parquet-time-of-day-timestamp", table("r.parquet", timestamp="t"),
         {"r.parquet": parquet({"user_id": ["a"], "item_id": ["x"], "t": [time(12, 0)]})},
         match=r"r\.parquet: field 't': column has type Time"),
    Case("parquet-binary-user", table("r.parquet"),
         {"r.parquet": parquet({"user_id": [b"\xff"], "item_id": ["x"]})},
         match=r"r\.parquet: field 'user_id': column has type Binary"),
    Case("parquet-nan-float-user", table("r.parquet"),
         {"r.parquet": parquet({"user_id": [1.0, float("nan")], "item_id": ["x", "y"]})},
         match=r"r\.parquet: field 'user_id': row 1: NaN is not an id"),
    Case("parquet-nan-text-item", table("r.parquet"),
         {"r.parquet": parquet({"user_id": ["a", "b"], "item_id": ["x", "NaN"]})},
         match=r"r\.parquet: field 'item_id': row 1: 'NaN' marks a missing value"),
    Case("parquet-null-user", table("r.parquet"),
         {"r.parquet": parquet({"user_id": [None, "b"], "item_id": ["x", "y"]})},
         match=r"r\.parquet: field 'user_id': row 0: empty value"),
    Case("parquet-nan-timestamp", table("r.parquet", timestamp="t"),
         {"r.parquet": parquet({"user_id": ["a", "b"], "item_id": ["x", "y"], "t": [1.0, float("nan")]})},
         match=r"r\.parquet: field 't': row 1: expected a finite number"),
    Case("parquet-nan-rating", table("r.parquet", rating="r"),
         {"r.parquet": parquet({"user_id": ["a"], "item_id": ["x"], "r": [float("nan")]})},
         match=r"r\.parquet: field 'r': row 0: expected a finite number"),
    Case("parquet-tz-aware-timestamps", table("r.parquet", timestamp="t"),
         {"r.parquet": parquet({"user_id": ["a"], "item_id": ["x"], "t": [datetime(2020, 1, 1, tzinfo=UTC)]}
                               )},
         error=None, check=lambda d: d.interactions.timestamps.tolist() == [1_577_836_800]),
    # --- RecBole atomic -------------------------------------------------------------------------------
    Case("atomic-empty-file", atomic(), {"x.inter": b""}, match=r"x\.inter:1: expected a header"),
    Case("atomic-header-only", atomic(), {"x.inter": b"user_id:token\titem_id:token\n"},
         match=r"x\.inter: no interactions"),
    Case("atomic-bom", atomic(), {"x.inter": b"\xef\xbb\xbfuser_id:token\titem_id:token\nu\ti\n"},
         error=None, check=users_are("u")),
    Case("atomic-crlf", atomic(), {"x.inter": b"user_id:token\titem_id:token\r\nu\ti\r\n"}, error=None,
         check=items_are("i")),
    Case("atomic-ragged", atomic(), {"x.inter": b"user_id:token\titem_id:token\nu\ti\tj\n"},
         match=r"x\.inter:2: expected 2 tab-separated fields, got 3"),
    Case("atomic-duplicate-field", atomic(), {"x.inter": b"user_id:token\tuser_id:token\n"},
         match=r"x\.inter:1: field 'user_id': field appears twice"),
    Case("atomic-nan-user", atomic(), {"x.inter": b"user_id:token\titem_id:token\nu\ti\nNaN\tj\n"},
         match=r"x\.inter:3: field 'user_id': 'NaN' marks a missing value"),
    Case("atomic-nan-rating", atomic(),
         {"x.inter": b"user_id:token\titem_id:token\trating:float\nu\ti\tnan\n"},
         match=r"x\.inter:2: field 'rating': expected a finite number"),
    Case("atomic-inf-timestamp", atomic(),
         {"x.inter": b"user_id:token\titem_id:token\ttimestamp:float\nu\ti\tinf\n"},
         match=r"x\.inter:2: field 'timestamp': expected a finite number"),
    Case("atomic-nan-catalogue-id",
         lambda tmp: readers.read_atomic(tmp / "x.inter", item_path=tmp / "x.item"),
         {"x.inter": b"user_id:token\titem_id:token\nu\ti\n", "x.item": b"item_id:token\ni\nnan\n"},
         match=r"x\.item:3: field 'item_id': 'nan' marks a missing value"),
    Case("atomic-binary-garbage", atomic(), {"x.inter": b"user_id:token\titem_id:token\n" + BINARY_GARBAGE},
         match=r"x\.inter:2: .*NUL byte"),
    Case("atomic-directory", atomic(), {"x.inter": directory}, match=r"x\.inter: .*is a directory"),
    Case("atomic-missing", atomic(), error=MissingDataFileError, match=r"x\.inter: no such file"),
    # --- LightGCN -------------------------------------------------------------------------------------
    Case("lightgcn-empty-file", lightgcn(), {"train.txt": b""}, match=r"train\.txt: empty file"),
    Case("lightgcn-bom", lightgcn(), {"train.txt": b"\xef\xbb\xbf0 1\n1 0\n"}, error=None,
         check=lambda d: d.interactions.users.tolist() == [0, 1]),
    Case("lightgcn-crlf", lightgcn(), {"train.txt": b"0 1\r\n1 0\r\n"}, error=None,
         check=lambda d: d.interactions.items.tolist() == [1, 0]),
    Case("lightgcn-not-really-gzip", lightgcn("train.txt.gz"), {"train.txt.gz": b"0 1\n1 0\n"}, error=None,
         check=lambda d: len(d.interactions) == 2),
    Case("lightgcn-negative-item", lightgcn(), {"train.txt": b"0 1\n1 -4\n"},
         match=r"train\.txt:2: field 'item_id': negative id -4"),
    Case("lightgcn-float-user", lightgcn(), {"train.txt": b"0 1\n1.0 2\n"},
         match=r"train\.txt:2: field 'user_id': expected a non-negative integer, got '1\.0'"),
    Case("lightgcn-too-many-digits", lightgcn(), {"train.txt": b"0 1\n1 99999999999999999999\n"},
         match=r"train\.txt:2: field 'item_id': .*more than 18 digits"),
    Case("lightgcn-huge-item", lightgcn(), {"train.txt": b"0 1\n1 " + HUGE + b"\n"},
         match=rf"train\.txt:2: field 'item_id': id {2**40} is too large"),
    Case("lightgcn-huge-user", lightgcn(), {"train.txt": b"0 1\n" + HUGE + b" 2\n"},
         match=rf"train\.txt:2: field 'user_id': id {2**40} is too large"),
    Case("lightgcn-huge-test-item", lightgcn(test="test.txt"),
         {"train.txt": b"0 1\n", "test.txt": b"0 " + HUGE + b"\n"},
         match=r"test\.txt:1: field 'item_id': id \d+ is too large"),
    Case("lightgcn-binary-garbage", lightgcn(), {"train.txt": b"0 1\n" + BINARY_GARBAGE},
         match=r"train\.txt:2: .*NUL byte"),
    Case("lightgcn-nul-after-digits", lightgcn(), {"train.txt": b"0 1\x00\n"},
         match=r"train\.txt:1: .*NUL byte"),
    Case("lightgcn-directory", lightgcn(), {"train.txt": directory}, match=r"train\.txt: .*is a directory"),
    Case("lightgcn-missing", lightgcn(), error=MissingDataFileError, match=r"train\.txt: no such file"),
    Case("lightgcn-counted-shape", lightgcn(), {"train.txt": b"2 5 6\n1 7\n3 1 2 3\n"},
         match=r"train\.txt: every line's first field equals the number of ids after it.*format 'counted'"),
    # --- sequences ------------------------------------------------------------------------------------
    Case("sequences-empty-file", sequences(), {"s.txt": b"\n"}, match=r"s\.txt: empty file"),
    Case("sequences-bom", sequences(), {"s.txt": b"\xef\xbb\xbf1 1 2\n"}, error=None, check=users_are("1")),
    Case("sequences-huge-item", sequences(), {"s.txt": b"1 1 2\n2 " + HUGE + b"\n"},
         match=rf"s\.txt:2: field 'item_id': id {2**40} is too large"),
    Case("sequences-huge-user", sequences(id_base=0), {"s.txt": HUGE + b" 1 2\n"},
         match=rf"s\.txt:1: field 'user_id': id {2**40} is too large"),
    Case("sequences-zero-in-one-based", sequences(), {"s.txt": b"1 0 2\n"},
         match=r"s\.txt:1: field 'item_id': id 0 is below 1"),
    Case("sequences-text-token", sequences(), {"s.txt": b"1 1 2\n2 abc\n"},
         match=r"s\.txt:2: field 'item_id': expected a non-negative integer, got 'abc'"),
    Case("sequences-counted-shape", sequences(id_base=0), {"s.txt": b"2 5 6\n1 7\n2 1 2\n"},
         match=r"s\.txt: every line's first field equals the number of ids after it"),
    Case("sequences-directory", sequences(), {"s.txt": directory}, match=r"s\.txt: .*is a directory"),
    # --- counted --------------------------------------------------------------------------------------
    Case("counted-empty-file", counted(), {"c.txt": b""}, match=r"c\.txt: empty file"),
    Case("counted-count-mismatch", counted(), {"c.txt": b"2 5 6\n3 7 8\n"},
         match=r"c\.txt:2: field 'count': the line says 3 items but 2 follow"),
    Case("counted-blank-line-inside", counted(), {"c.txt": b"1 5\n\n1 6\n"},
         match=r"c\.txt:2: blank line"),
    Case("counted-huge-item", counted(), {"c.txt": b"1 5\n1 " + HUGE + b"\n"},
         match=rf"c\.txt:2: field 'item_id': id {2**40} is too large"),
    Case("counted-negative-item", counted(), {"c.txt": b"1 -5\n"},
         match=r"c\.txt:1: field 'item_id': negative id"),
    Case("counted-bom-crlf", counted(), {"c.txt": b"\xef\xbb\xbf1 5\r\n2 0 5\r\n"}, error=None,
         check=lambda d: d.interactions.users.tolist() == [0, 1, 1]),
    # --- GFormer --------------------------------------------------------------------------------------
    Case("gformer-missing-directory", lambda tmp: readers.read_gformer(tmp / "nowhere"),
         match=r"nowhere: .*not a directory"),
    Case("gformer-file-not-directory", lambda tmp: readers.read_gformer(tmp / "f"), {"f": b"x"},
         match=r"f: .*not a directory"),
    Case("gformer-npz-garbage", lambda tmp: readers.read_gformer(tmp / "d"),
         {**eye_npz(), "d/trnMat.npz": BINARY_GARBAGE}, match=r"trnMat\.npz: not a scipy sparse \.npz"),
    Case("gformer-npz-unknown-format", lambda tmp: readers.read_gformer(tmp / "d"),
         {**eye_npz(), "d/valMat.npz": npz(format=np.array("evil"), shape=np.array([2, 2]))},
         match=r"valMat\.npz: not a scipy sparse \.npz"),
    Case("gformer-npz-unknown-compression", lambda tmp: readers.read_gformer(tmp / "d"),
         {**eye_npz(), "d/tstMat.npz": npz_with_unknown_compression},
         match=r"tstMat\.npz: not a scipy sparse \.npz file"),
    Case("gformer-npz-huge-shape", lambda tmp: readers.read_gformer(tmp / "d"),
         {f"d/{stem}.npz": npz(sp.coo_matrix(([1.0], ([0], [1])), shape=(2**40, 2)))
          for stem in ("trnMat", "valMat", "tstMat")},
         match=r"trnMat\.npz: field 'users': the matrix has \d+ rows"),
    Case("gformer-unknown-pickle", lambda tmp: readers.read_gformer(tmp / "g"),
         {f"g/{stem}.pkl": pickle.dumps(sp.coo_matrix(np.eye(2))) for stem in ("trnMat", "valMat", "tstMat")},
         match=r"trnMat\.pkl: not a known pickle"),
    Case("gformer-manifest-beside-data-vouches", lambda tmp: readers.read_gformer(tmp / "g"),
         setup=known_gformer_pickles, match=r"trnMat\.pkl: not a known pickle"),
    # --- ML-1M (BERT4Rec) -----------------------------------------------------------------------------
    Case("ml1m-missing-directory", lambda tmp: readers.read_ml1m_seq(tmp / "nowhere"),
         match=r"nowhere: .*not a directory"),
    Case("ml1m-manifest-beside-data-vouches", lambda tmp: readers.read_ml1m_seq(tmp / "ml"),
         setup=known_ml1m_pickle, match=r"dataset\.pkl: not a known pickle"),
    Case("ml1m-garbage-pickle", lambda tmp: readers.read_ml1m_seq(tmp / "ml"),
         {"ml/dataset.pkl": BINARY_GARBAGE},
         match=r"dataset\.pkl: not a known pickle"),
    # --- item attributes (JSON) -----------------------------------------------------------------------
    Case("attributes-duplicate-key", lambda tmp: readers.read_item_attributes(tmp / "a.json", num_items=2),
         {"a.json": b'{"1": [1], "2": [2], "1": [3]}'},
         match=r"a\.json:1: field 'item_id': item 1 appears twice"),
    Case("attributes-bool-id", lambda tmp: readers.read_item_attributes(tmp / "a.json", num_items=1),
         {"a.json": b'{"1": [true]}'},
         match=r"a\.json: field 'attributes': item 1: expected a list of positive"),
    Case("attributes-huge-id", lambda tmp: readers.read_item_attributes(tmp / "a.json", num_items=1),
         {"a.json": b'{"1": [100000000000000000000000]}'}, match=r"a\.json: field 'attributes': item 1:"),
    Case("attributes-bom", lambda tmp: readers.read_item_attributes(tmp / "a.json", num_items=1),
         {"a.json": b'\xef\xbb\xbf{"1": [4]}'}, error=None, check=None),
    Case("attributes-binary", lambda tmp: readers.read_item_attributes(tmp / "a.json", num_items=1),
         {"a.json": BINARY_GARBAGE}, match=r"a\.json:1: .*NUL byte"),
    # --- LightGCN id lists ----------------------------------------------------------------------------
    Case("id-list-empty", lambda tmp: readers.read_id_list(tmp / "l.txt"), {"l.txt": b"org_id remap_id\n"},
         match=r"l\.txt: empty id list"),
    Case("id-list-negative", lambda tmp: readers.read_id_list(tmp / "l.txt"), {"l.txt": b"a 0\nb -1\n"},
         match=r"l\.txt:2: field 'remap_id': expected a non-negative integer, got '-1'"),
    Case("id-list-binary", lambda tmp: readers.read_id_list(tmp / "l.txt"), {"l.txt": BINARY_GARBAGE},
         match=r"l\.txt:1: .*NUL byte"),
    # --- the registry ---------------------------------------------------------------------------------
    Case("registry-counted-txt-detected", lambda tmp: registry.read_path(tmp / "c.txt"),
         {"c.txt": b"2 5 6\n1 7\n3 1 2 3\n"}, error=None,
         check=lambda d: d.num_users == 3 and d.interactions.users.tolist() == [0, 0, 1, 2, 2, 2]),
    Case("registry-binary-txt", lambda tmp: registry.read_path(tmp / "b.txt"), {"b.txt": BINARY_GARBAGE},
         error=RecforgeError, match=r"b\.txt: cannot tell the format"),
    Case("registry-lightgcn-directory-counted", lambda tmp: registry.read_path(tmp / "d"),
         {"d/train.txt": b"2 5 6\n1 7\n"}, match=r"train\.txt: every line's first field"),
]


def write_files(root: Path, files: dict[str, bytes | Writer]) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            content(path)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_input(case: Case, tmp_path: Path) -> None:
    write_files(tmp_path, case.files)
    if case.setup is not None:
        case.setup(tmp_path)
    if case.error is None:
        dataset = case.call(tmp_path)
        assert isinstance(dataset, Dataset) or case.check is None
        if case.check is not None:
            assert case.check(dataset), dataset
        return
    with pytest.raises(case.error, match=case.match) as caught:
        case.call(tmp_path)
    assert isinstance(caught.value, RecforgeError)


def test_case_ids_are_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
