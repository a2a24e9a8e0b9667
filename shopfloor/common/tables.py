"""Plant tables (CSV or Parquet, local or s3://) read into frames, with one-line errors naming the file."""

from __future__ import annotations

import io
from pathlib import PurePosixPath

import pandas as pd

from shopfloor.common.errors import DataValidationError
from shopfloor.common.storage import read_bytes

__all__ = [
    "_format_of",
    "read_table",
]


def _format_of(uri: str) -> str:
    """Table format from the file suffix: 'csv' or 'parquet'."""
    suffix = PurePosixPath(uri.split("?")[0]).suffix.lower()
    if suffix in (".csv", ".txt"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise DataValidationError(uri, f"unsupported file type '{suffix or '(none)'}'", expected=".csv or .parquet")


def read_table(uri: str, raw: bytes | None = None) -> pd.DataFrame:
    """Parse a CSV or Parquet table, turning parser failures into one-line errors naming the file."""
    raw = read_bytes(uri) if raw is None else raw
    if not raw.strip():
        raise DataValidationError(uri, "file is empty", expected="a header row and at least one data row")
    try:
        if _format_of(uri) == "parquet":
            frame = pd.read_parquet(io.BytesIO(raw))
        else:
            frame = pd.read_csv(io.BytesIO(raw), skipinitialspace=True, on_bad_lines="error")
    except DataValidationError:
        raise
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataValidationError(uri, f"malformed table ({detail})", expected="well-formed CSV or Parquet") from None
    if frame.empty:
        raise DataValidationError(uri, "no data rows", expected="at least one data row under the header")
    return frame
