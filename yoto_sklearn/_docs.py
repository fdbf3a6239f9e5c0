"""Docstring fragments shared by several public functions (scanpy's ``_doc_params``).

A docstring line that holds only ``{name}`` is replaced by the fragment ``name``,
every line indented like the placeholder. Other braces in docstrings (``{"a", "b"}``
option sets) are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T", bound=Callable)

FRAGMENTS = {
    "X_predict": """\
X : {array-like, sparse matrix, AnnData, RowSource} of shape (n_samples, n_features)
    Same genes, in the same order, as in :meth:`fit`.""",
    "X_test": """\
X : {array-like, sparse matrix, AnnData, RowSource} of shape (n_samples, n_features)
    Test cells.""",
    "path_dpi": """\
path : str or path-like, optional
    Write the figure there as PNG.
dpi : int, default=120
    Resolution of the PNG.""",
    "selector_fitted": """\
selector : YOTOSelector
    A fitted selector.""",
    "layer_use_raw": """\
layer : str, optional
    Read ``adata.layers[layer]`` instead of ``adata.X``.
use_raw : bool, default=False
    Read ``adata.raw.X``, with the gene names ``adata.raw.var_names``.""",
}


def doc_params(**fragments: str) -> Callable[[T], T]:
    """Fill ``{name}`` placeholder lines of the decorated object's docstring."""

    def decorate(obj: T) -> T:
        doc = obj.__doc__ or ""
        for name, text in fragments.items():
            pattern = re.compile(rf"^([ \t]*)\{{{name}\}}[ \t]*$", re.MULTILINE)

            def indent(match: re.Match, text: str = text) -> str:
                pad = match.group(1)
                return "\n".join(
                    pad + line if line else line for line in text.split("\n")
                )

            doc, n = pattern.subn(indent, doc)
            if n == 0:
                raise ValueError(f"{obj.__qualname__} has no {{{name}}} placeholder")
        obj.__doc__ = doc
        return obj

    return decorate


def shared(*names: str) -> Callable[[T], T]:
    """:func:`doc_params` with fragments of :data:`FRAGMENTS` by name."""
    return doc_params(**{name: FRAGMENTS[name] for name in names})
