"""Real, labelled single-cell data that ships inside packages on PyPI.

Nothing here downloads anything: the files are read from installed wheels.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import anndata

__all__ = ["load_pbmc68k_reduced", "pbmc68k_reduced_path"]

_PBMC_FILE = ("datasets", "10x_pbmc68k_reduced.h5ad")
_DEMO_HINT = 'install it with: pip install "yoto-sklearn[demo]"'


def pbmc68k_reduced_path() -> Path:
    """Return the path of ``10x_pbmc68k_reduced.h5ad`` inside the scanpy wheel.

    scanpy is located with :func:`importlib.util.find_spec`; it is not imported.

    Returns
    -------
    path : pathlib.Path
        Path to the ``.h5ad`` file shipped with scanpy.

    Raises
    ------
    ImportError
        If scanpy is not installed.
    FileNotFoundError
        If the installed scanpy does not ship the file.
    """
    spec = importlib.util.find_spec("scanpy")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "load_pbmc68k_reduced needs the scanpy package, which ships the data "
            f"file; {_DEMO_HINT}"
        )
    for location in spec.submodule_search_locations:
        path = Path(location).joinpath(*_PBMC_FILE)
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"the installed scanpy ({list(spec.submodule_search_locations)}) does not "
        f"ship {'/'.join(_PBMC_FILE)}; reinstall it: pip install --force-reinstall "
        '"yoto-sklearn[demo]"'
    )


def load_pbmc68k_reduced() -> anndata.AnnData:
    """Load the 700-cell PBMC dataset (``pbmc68k_reduced``) that ships with scanpy.

    The file is read with anndata alone (scanpy is only needed because its
    wheel carries the file; it is not imported).

    Returns
    -------
    adata : anndata.AnnData
        700 human PBMCs x 765 genes. ``adata.X`` holds scaled values
        (z-scores, can be negative); ``adata.raw.X`` holds the log-normalised
        expression of the same 765 genes as a sparse CSR matrix, which is what
        the demo uses (``use_raw=True``). Targets in ``adata.obs``:
        ``bulk_labels`` (10 FACS-sorted populations), ``phase`` (G1/S/G2M),
        ``louvain`` (clusters) and the continuous ``S_score``, ``G2M_score``,
        ``percent_mito``, ``n_counts``.

    Raises
    ------
    ImportError
        If scanpy is not installed (``pip install "yoto-sklearn[demo]"``).

    Examples
    --------
    >>> from yoto_sklearn.datasets import load_pbmc68k_reduced
    >>> adata = load_pbmc68k_reduced()  # doctest: +SKIP
    >>> adata.raw.shape  # doctest: +SKIP
    (700, 765)
    """
    import anndata

    path = pbmc68k_reduced_path()
    with warnings.catch_warnings():
        # The file was written by an old anndata (before .obsp and encoding
        # metadata); anndata converts it and says so at length.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", getattr(anndata, "OldFormatWarning", Warning))
        return anndata.read_h5ad(path)
