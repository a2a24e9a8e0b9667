"""Hypothesis strategies shared by the fuzz tests: JSON-like documents and the awkward numbers users send."""

from __future__ import annotations

from hypothesis import strategies as st

# Numbers at the edges: beyond float32 and float64, NaN and inf, ints past int64 and past float64.
EDGE_NUMBERS = st.sampled_from(
    [0, -0.0, 1e-45, 3.4028234e38, 3.5e38, 1e39, -1e39, 1e308, float("inf"), float("-inf"), float("nan"),
     2**63, -(2**63) - 1, 2**64, 10**39, 10**400, -(10**400)]
)  # fmt: skip

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.integers(min_value=-(10**500), max_value=10**500),
    EDGE_NUMBERS,
)

SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=12))


def json_like(max_leaves: int = 25) -> st.SearchStrategy:
    """Arbitrary nested JSON-like values: dicts with text keys, lists, and the scalars above."""
    return st.recursive(
        SCALARS,
        lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=10), children, max_size=6),
        max_leaves=max_leaves,
    )


def one_line(message: str, *, carriage_return: bool = False) -> bool:
    """A user-facing error: one non-empty line.

    ``ShopfloorError`` turns line feeds into spaces but keeps a carriage return from the input (a CSV cell, a YAML
    key) as it is; ``carriage_return=True`` refuses that as well (see the strict xfail in test_table_ingest.py).
    """
    breaks = "\n\r" if carriage_return else "\n"
    return bool(message.strip()) and not any(c in message for c in breaks)
