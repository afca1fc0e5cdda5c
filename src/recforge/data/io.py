"""Opening data files whether or not they are gzip-compressed.

Benchmark files are often shipped as ``train.txt.gz`` while papers, configs and READMEs name
``train.txt``; :func:`resolve_data_file` accepts either name, so a user never has to know which one
is on disk. Readers go through :func:`open_text` / :func:`read_bytes` and never call ``gzip`` or
``open`` themselves.

They also share the checks every text format needs: a directory where a file was expected, a NUL
byte (binary data, or UTF-16 text) reported at its line, and a UTF-8 byte-order mark, which is
dropped so that the first header field or id is not read as ``"\ufeffuser_id"``.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import TextIO

from recforge.errors import DataFormatError, RecforgeError

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"


class MissingDataFileError(RecforgeError, FileNotFoundError):
    """A data file (and its ``.gz`` twin) does not exist.

    Also a :class:`FileNotFoundError`, so code that catches the built-in still works.
    """

    def __init__(self, path: str | Path, tried: list[Path]):
        self.path, self.tried = str(path), tuple(tried)
        super().__init__(f"{path}: no such file (looked for {', '.join(str(p) for p in tried)})")


def resolve_data_file(path: str | Path) -> Path:
    """The file on disk for ``path``: the path itself, or ``path.gz``, or ``path`` without ``.gz``.

    Raises :class:`MissingDataFileError` naming every path tried.
    """
    path = Path(path)
    candidates = [path]
    if path.suffix == ".gz":
        candidates.append(path.with_suffix(""))
    else:
        candidates.append(path.with_name(path.name + ".gz"))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    for candidate in candidates:
        if candidate.is_dir():
            raise DataFormatError(candidate, "is a directory, expected a file")
    raise MissingDataFileError(path, candidates)


def data_file_exists(path: str | Path) -> bool:
    """Whether :func:`resolve_data_file` would find ``path`` (plain or ``.gz``); a directory of
    that name is an error, not an absent file."""
    try:
        resolve_data_file(path)
    except MissingDataFileError:
        return False
    return True


def _is_gzip(path: Path) -> bool:
    # Sniff the magic bytes rather than trust the suffix: a decompressed copy may keep its ".gz".
    try:
        with path.open("rb") as handle:
            return handle.read(2) == GZIP_MAGIC
    except OSError as error:  # unreadable (permissions), vanished
        raise DataFormatError(path, f"cannot read the file ({error.strerror or error})") from error


def read_bytes(path: str | Path) -> bytes:
    """The whole (decompressed) content of a data file; fast parsers work on this directly."""
    resolved = resolve_data_file(path)
    if not _is_gzip(resolved):
        try:
            return resolved.read_bytes()
        except OSError as error:
            raise DataFormatError(resolved, f"cannot read the file ({error.strerror or error})") from error
    try:
        with gzip.open(resolved, "rb") as handle:
            return handle.read()
    except (OSError, EOFError) as error:  # BadGzipFile is an OSError; a cut-off file is an EOFError
        raise DataFormatError(resolved, f"corrupt or truncated gzip file ({error})") from error


def check_text_bytes(path: str | Path, data: bytes) -> bytes:
    """``data`` without a leading UTF-8 byte-order mark; a NUL byte is a :class:`DataFormatError`
    naming its line.

    No text format recforge reads has NUL bytes, and numpy drops trailing NULs from byte strings
    (``b"5\x00"`` would read as id 5), so a NUL is refused rather than parsed around.
    """
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise DataFormatError(
            path, "a NUL byte: this is binary data (or UTF-16 text), not a UTF-8 text file", line=line
        )
    return data[len(UTF8_BOM):] if data.startswith(UTF8_BOM) else data


def open_text(path: str | Path, encoding: str = "utf-8") -> TextIO:
    """Open a data file for reading text, decompressing ``.gz`` transparently.

    ``encoding`` matters for old files: MovieLens ``movies.dat`` and GroupLens ``u.item`` are
    ISO-8859-1, not UTF-8. Newlines are translated (``\\r\\n`` reads as ``\\n``).
    """
    resolved = resolve_data_file(path)
    if _is_gzip(resolved):
        return io.TextIOWrapper(gzip.open(resolved, "rb"), encoding=encoding)
    return resolved.open("r", encoding=encoding)


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """The whole (decompressed, decoded) text of a data file, with newlines normalised to ``\\n``.

    A byte that is not valid in ``encoding`` is a :class:`DataFormatError` naming its line, with
    the advice to pass another encoding (the usual cause is a Latin-1 file read as UTF-8); so is a
    NUL byte (see :func:`check_text_bytes`). A UTF-8 byte-order mark is dropped.
    """
    data = check_text_bytes(path, read_bytes(path))
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataFormatError(
            path, f"not valid {encoding} text ({error.reason}); pass encoding=... (e.g. 'latin-1')", line=line
        ) from error
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text
