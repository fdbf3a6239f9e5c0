"""Readers of the command line: ``.h5ad``, 10x (folder and ``.h5``), CSV/TSV tables.

``.h5ad`` is read by anndata and the 10x formats by scanpy (``read_10x_mtx``,
``read_10x_h5``; scanpy is needed only for them). Tables are parsed by pandas. What
is written here by hand is what no library decides for a cells x genes table with
label columns: which column holds the cell names, which columns are labels, and
refusing what pandas would silently accept (duplicate gene names renamed ``G0.1``,
the row-number column of ``DataFrame.to_csv`` read as a gene, a header with no rows).
"""

from __future__ import annotations

import difflib
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._parser import CLIError

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = ["read_data", "read_table", "read_obs_table", "read_panel_columns"]

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": "\t"}
# First-column headers that name cell names, not a gene. "" is what
# DataFrame.to_csv() writes for an unnamed index (pandas reads it as "Unnamed: 0").
INDEX_NAMES = {"", "cell", "cells", "cell_id", "cell_name", "barcode", "barcodes"}
INDEX_NAMES |= {"obs_names", "index"}


def suffix(path: Path) -> str:
    """Return the data suffix, ignoring a trailing ``.gz``."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def read_data(
    path: str | os.PathLike[str],
    targets: Sequence[str] = (),
    *,
    backed: bool = False,
) -> anndata.AnnData:
    """Read cells x genes data for the command line.

    Parameters
    ----------
    path : str or path-like
        ``.h5ad``; ``.csv``/``.tsv`` (optionally ``.gz``) with a header row, one row
        per cell, one column per gene (see :func:`read_table`); a 10x Cell Ranger
        matrix folder or a 10x ``.h5`` file (both read by scanpy).
    targets : sequence of str, default=()
        Columns of a CSV/TSV file that are labels (they go to ``obs``).
    backed : bool, default=False
        Open ``.h5ad`` files in backed read-only mode (``X`` stays on disk).

    Returns
    -------
    adata : anndata.AnnData
        The data.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CLIError
        If the format is not supported or the file is malformed.
    """
    import anndata

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.is_dir():
        return _read_10x_folder(path)
    kind = suffix(path)
    if kind == ".h5" and _is_h5ad(path):
        kind = ".h5ad"  # an .h5ad under another name
    if kind == ".h5ad":
        try:
            with warnings.catch_warnings():
                # legacy files: anndata moves .uns graphs to .obsp and says so
                warnings.filterwarnings("ignore", message="Moving element from")
                return anndata.read_h5ad(path, backed="r" if backed else None)
        except OSError as exc:
            raise CLIError(f"cannot read {path} as .h5ad: {exc}") from None
    if kind == ".h5":
        return _read_10x_h5(path)
    if kind in TABLE_SUFFIXES:
        return read_table(path, targets)
    raise CLIError(
        f"unsupported data file {path.name!r}: use .h5ad, .csv, .tsv, a 10x .h5 file "
        "or a 10x matrix folder"
    )


def _scanpy(what: str) -> Any:
    try:
        import scanpy
    except ImportError:
        raise CLIError(
            f"reading {what} needs scanpy, which is not installed (pip install scanpy)"
        ) from None
    return scanpy


def _read_10x_folder(folder: Path) -> anndata.AnnData:
    names = {p.name for p in folder.iterdir()}
    v3 = {"matrix.mtx.gz", "features.tsv.gz", "barcodes.tsv.gz"} <= names
    v2 = {"matrix.mtx", "genes.tsv", "barcodes.tsv"} <= names
    if not (v3 or v2):
        raise CLIError(
            f"{folder} is a folder but not a 10x Cell Ranger matrix folder (needs "
            "matrix.mtx.gz, features.tsv.gz and barcodes.tsv.gz, or the v2 layout "
            "matrix.mtx, genes.tsv and barcodes.tsv)"
        )
    sc = _scanpy("a 10x folder")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            # gene symbols as names (made unique, as scanpy's tutorials do); only
            # "Gene Expression" features (no antibody capture rows)
            return sc.read_10x_mtx(folder, var_names="gene_symbols", make_unique=True)
    except (ValueError, KeyError, IndexError, OSError) as exc:
        raise CLIError(f"cannot read the 10x folder {folder}: {exc}") from None


def _is_h5ad(path: Path) -> bool:
    """Whether an HDF5 file is an AnnData file (anndata writes ``encoding-type``)."""
    try:
        import h5py

        with h5py.File(path, "r") as fh:
            kind = fh.attrs.get("encoding-type", b"")
            kind = kind.decode() if isinstance(kind, bytes) else str(kind)
            return kind == "anndata" or {"obs", "var"} <= set(fh.keys())
    except (OSError, ImportError):
        return False


def _read_10x_h5(path: Path) -> anndata.AnnData:
    sc = _scanpy("a 10x .h5 file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            adata = sc.read_10x_h5(path)
            adata.var_names_make_unique()
    except Exception as exc:  # any reader failure: one line naming the file
        first = (str(exc).splitlines() or [""])[0]
        raise CLIError(
            f"cannot read {path} as a 10x .h5 file (neither a Cell Ranger .h5 nor "
            f"an .h5ad): {type(exc).__name__}: {first}"
        ) from None
    return adata


def table_separator(path: Path) -> str:
    """The separator of a table: by suffix, or ``;`` when the header has no comma.

    A European-locale spreadsheet saves ``.csv`` files with ``;``; read as commas
    they would be one column.
    """
    sep = TABLE_SUFFIXES[suffix(path)]
    if sep == ",":
        import gzip

        opener = gzip.open if path.suffix.lower() == ".gz" else open
        with opener(path, "rt", encoding="utf-8-sig") as fh:
            first = fh.readline()
        if "," not in first and ";" in first:
            return ";"
    return sep


def _header(path: Path, sep: str) -> list[str]:
    """The column names exactly as written (pandas would rename duplicates)."""
    try:
        first = pd.read_csv(
            path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False
        )
    except pd.errors.EmptyDataError:
        raise CLIError(f"{path} is empty") from None
    names = [str(n).strip() for n in first.iloc[0].tolist()]
    repeated = sorted(n for n, c in Counter(names).items() if c > 1 and n)
    if repeated:
        raise CLIError(
            f"{path.name} has duplicate column name(s) {repeated[:5]}: every gene "
            "(and label) column needs a unique name"
        )
    unnamed = [i for i, n in enumerate(names) if not n and i > 0]
    if unnamed:
        raise CLIError(f"column {unnamed[0] + 1} of {path.name} has no name")
    return names


def _suggest(name: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, [n for n in names if n], n=3)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def read_table(
    path: Path, targets: Sequence[str] = (), usecols: Sequence[str] | None = None
) -> anndata.AnnData:
    """Read a cells x genes CSV/TSV with a header into an AnnData.

    The first column holds the cell names when its header is empty (what
    ``DataFrame.to_csv`` writes for the index), a usual index name (``cell``,
    ``barcode``, ``obs_names``, ...), or when it is not a ``--target`` and holds
    unique non-numeric values. Columns named in ``targets`` go to ``obs``; every
    other column is a gene and must be numeric.

    Parameters
    ----------
    path : pathlib.Path
        The table.
    targets : sequence of str, default=()
        Label columns; each must exist.
    usecols : sequence of str, optional
        Read only these gene columns (and the cell names).

    Returns
    -------
    adata : anndata.AnnData
        Genes in ``X`` (float32), targets in ``obs``.

    Raises
    ------
    CLIError
        Duplicate or missing column names, an unknown target, a non-numeric gene
        column, a header without rows, no gene column.
    """
    import anndata

    sep = table_separator(path)
    names = _header(path, sep)
    for target in targets:
        if target not in names:
            raise CLIError(
                f"--target {target!r} is not a column of {path.name}"
                + _suggest(target, names)
            )
    if usecols is None:
        positions = list(range(len(names)))
    else:
        where = {n: i for i, n in enumerate(names)}
        positions = sorted(
            {0} | {where[c] for c in usecols} | {where[t] for t in targets}
        )
    table = pd.read_csv(path, sep=sep, usecols=positions, low_memory=False)
    table.columns = [names[i] for i in positions]  # the names as written
    if table.shape[0] == 0:
        raise CLIError(f"{path.name} has a header but no rows (no cells)")
    first = names[0]
    column = table[first]
    is_index = first not in targets and (
        first.lower() in INDEX_NAMES
        or (not pd.api.types.is_numeric_dtype(column) and column.is_unique)
    )
    if is_index:
        table = table.set_index(first)
        table.index = pd.Index(table.index.astype(str), name=None)
    else:
        if usecols is not None and first not in usecols and first not in targets:
            table = table.drop(columns=first)
        table.index = table.index.astype(str)
    obs_cols = [c for c in table.columns if c in targets]
    genes = [c for c in table.columns if c not in targets]
    bad = [c for c in genes if not pd.api.types.is_numeric_dtype(table[c])]
    if bad:
        raise CLIError(
            f"column {bad[0]!r} of {path.name} is not numeric: name it with --target "
            "if it is a label, or remove it"
        )
    if not genes:
        raise CLIError(f"{path} has no gene (numeric) column")
    return anndata.AnnData(
        X=table[genes].to_numpy(dtype=np.float32),
        obs=table[obs_cols].copy(),
        var=pd.DataFrame(index=pd.Index(genes)),
    )


def read_obs_table(path: Path) -> pd.DataFrame:
    """Read a per-cell label table for ``--obs`` (first column: cell names).

    Parameters
    ----------
    path : pathlib.Path
        CSV/TSV with a header; first column = cell names.

    Returns
    -------
    obs : pandas.DataFrame
        Indexed by cell name (str).
    """
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    kind = suffix(path)
    if kind not in TABLE_SUFFIXES:
        raise CLIError(f"--obs must be a .csv or .tsv file, got {path.name!r}")
    sep = table_separator(path)
    _header(path, sep)  # unique names
    table = pd.read_csv(path, sep=sep, index_col=0)
    table.index = table.index.astype(str)
    return table


def require_genes(panel: Sequence[str], available: pd.Index, data: Path) -> None:
    """Raise a one-line error naming the first panel gene absent from ``data``."""
    present = set(available)
    missing = [g for g in panel if g not in present]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise CLIError(f"panel gene {missing[0]!r}{more} is missing from {data}")


def _positions(panel: Sequence[str], names: pd.Index, data: Path) -> np.ndarray:
    """Column of each panel gene; duplicated names elsewhere do not matter."""
    require_genes(panel, names, data)
    found = pd.Series(np.arange(len(names))).groupby(np.asarray(names)).agg(list)
    repeated = [g for g in panel if len(found[g]) > 1]
    if repeated:
        raise CLIError(
            f"panel gene {repeated[0]!r} appears {len(found[repeated[0]])} times in "
            f"{data}'s gene names: make them unique"
        )
    return np.asarray([found[g][0] for g in panel], dtype=int)


def read_panel_columns(
    data: Path,
    gene_names: Sequence[str] | None,
    n_features: int,
    support: np.ndarray,
    layer: str | None,
    use_raw: bool,
) -> tuple[Any, pd.Index]:
    """Read only the panel genes of DATA; return (cells x panel matrix, cells).

    Without gene names (a model fitted on a plain array) the panel is taken by
    column position, and DATA must have exactly the fitted number of genes.
    """
    panel = None if gene_names is None else [str(gene_names[i]) for i in support]
    kind = suffix(data) if data.is_file() else ""
    if data.is_file() and kind in TABLE_SUFFIXES and panel is not None:
        require_genes(panel, pd.Index(_header(data, table_separator(data))), data)
        adata = read_table(data, (), usecols=panel)
        return adata[:, panel].X, adata.obs_names
    adata = read_data(data, backed=kind == ".h5ad")
    try:
        from ..sources import anndata_matrix

        try:
            matrix, names = anndata_matrix(adata, layer, use_raw)
        except ValueError as exc:
            fitted = ".raw" if use_raw else (f"layer {layer!r}" if layer else "X")
            raise CLIError(
                f"{data}: {exc} (the model was fitted on {fitted}; pass --layer "
                "NAME, --layer '' for X, or --use-raw / --no-use-raw)"
            ) from None
        names = pd.Index(names)
        if panel is None:
            positions = np.asarray(support, dtype=int)
            if matrix.shape[1] != n_features:
                raise CLIError(
                    f"the model has no gene names, so {data} must have its "
                    f"{n_features} genes in the fitted order; it has {matrix.shape[1]}"
                )
        else:
            positions = _positions(panel, names.astype(str), data)
        order = np.argsort(positions, kind="stable")
        block = matrix[:, positions[order]]  # backed files need increasing order
        inverse = np.empty_like(order)
        inverse[order] = np.arange(order.size)
        block = block[:, inverse]
        return block, pd.Index(adata.obs_names.astype(str))
    finally:
        if getattr(adata, "isbacked", False):
            adata.file.close()
