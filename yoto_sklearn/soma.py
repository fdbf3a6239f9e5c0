"""Train and predict from a TileDB-SOMA experiment, without an h5ad export first.

A CELLxGENE Census slice or a lab's own atlas.

:class:`SomaSource` is a row source (see :mod:`yoto_sklearn.sources`): ``fit``,
``predict``, ``transform`` and ``score`` stream it in contiguous runs of cells, as
they stream a backed h5ad (chunk-wise shuffle, ``max_cells_per_epoch``, panel-only
refinement), and prediction reads only the ``k`` panel columns from storage.
tiledbsoma does the reading (``pip install "yoto-sklearn[soma]"``).

The source is a light description (URI, measurement, X layer, value filters), so it
pickles: ``GridSearchCV(n_jobs=2)`` and Dask workers reopen the experiment
themselves. Targets are obs column names (``fit(source, ["cell_type",
"disease"])``); values listed in ``missing_values`` (Census writes ``"unknown"``)
are read as missing labels.

Census facts handled here: ``is_primary_data == True`` is added to the cell filter
by default when obs has that column (Census stores some cells more than once); genes
are named by ``feature_name`` when var has it.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._tiledb import (
    gene_tiling,
    open_experiment,
    read_config,
    read_coordinate,
    read_positions,
    require_tiledbsoma,
)
from .sources import (
    BUFFER_CHUNKS,
    CHUNK_ENTRIES,
    BackedSource,
    check_finite_panel,
    dense_float,
)

__all__ = ["SomaSource", "write_panel_layer"]

NAME_COLUMNS = ("feature_name", "var_id", "gene_name", "gene_ids")
DENSITY_SAMPLE = 2048  # cells read at construction to size the chunks
# the X tiling write_panel_layer gives a panel layer (bench_soma_layout.md)
PANEL_TILING = {"cells_per_tile": 32_768, "genes_per_tile": 4, "capacity": 2048}
# array metadata a finished write_panel_layer leaves: the X layer it copies
PANEL_OF = "yoto_sklearn.panel_layer_of"


class _Obs:
    """The cells' metadata, read column by column on demand (never all at once)."""

    def __init__(self, source: SomaSource) -> None:
        self._source = source
        self.columns = pd.Index(source.obs_columns)

    def __getitem__(self, cols: str | list[str]) -> pd.Series | pd.DataFrame:
        names = [cols] if isinstance(cols, str) else list(cols)
        frame = self._source.read_obs(names)
        return frame[names[0]] if isinstance(cols, str) else frame


class SomaSource(BackedSource):
    """Cells of a TileDB-SOMA experiment as a row source for ``fit`` and ``predict``.

    Parameters
    ----------
    uri : str
        The experiment: a local folder or any URI tiledbsoma opens.
    measurement : str, default="RNA"
        The measurement (``exp.ms[measurement]``).
    X_layer : str, default="data"
        The X layer to read (``tiledbsoma.io.from_anndata`` writes ``"data"``;
        the Census has ``"raw"`` counts and ``"normalized"``). Values are used as
        stored: train on log-normalised values, as for any other input.
    panel_layer : str, optional
        An X layer holding the same values as ``X_layer``, tiled for reading a
        few genes of many cells, written by :func:`write_panel_layer` (a layer
        without its completion mark is refused): refinement and
        prediction read the panel columns from it, everything else from
        ``X_layer``. With tiledbsoma's default tiling a 50-gene read decompresses
        nearly every tile of its cells; from a panel layer, every cell's panel
        was read 10x faster (``benchmarks/results/bench_soma_layout.md``).
    obs_value_filter, var_value_filter : str, optional
        tiledbsoma value filters of the cells and genes, e.g.
        ``"tissue_general == 'blood'"``.
    primary_only : bool or None, default=None
        Keep only ``is_primary_data == True`` cells. ``None``: when obs has that
        column.
    genes : sequence of str, optional
        Exactly these genes, in this order (names of ``gene_column``); a name not
        in the experiment is an error. Takes precedence over ``var_value_filter``.
    gene_column : str, optional
        The var column naming genes; default the first of ``feature_name``,
        ``var_id``, ``gene_name``, ``gene_ids`` that var has.
    missing_values : sequence, default=("unknown",)
        Label values read as missing (NaN) in targets.
    chunk_rows : int, optional
        Cells per contiguous read (default: about 4 million stored values).
    buffer_chunks : int, default=4
        Chunks per shuffle buffer.
    tiledb_config : dict, optional
        TileDB configuration for opening the experiment (e.g. the Census on S3:
        ``{"vfs.s3.region": "us-west-2", "vfs.s3.no_sign_request": "true"}``).
        A local folder is read with ``vfs.min_batch_size`` and
        ``vfs.min_batch_gap`` set to 0, so that a query reads only its tiles
        (TileDB's defaults, 20 MB and 500 KB, merge reads for object stores; a
        key given here wins, e.g. those defaults on a network file system).
    presence : array-like or sparse matrix of bool, optional
        Which genes each dataset measured, datasets x genes of the measurement
        (columns by var ``soma_joinid``), e.g. the Census's
        ``cellxgene_census.get_presence_matrix(census, organism)``. A gene a
        dataset never measured is stored as absent, which reads as 0: with
        ``presence``, only genes measured in **every** dataset of the selected
        cells are kept (a warning says how many are left out; an explicit
        ``genes=`` list with such a gene is an error). Restricting is exact;
        masking per cell would ask the network to tell "not measured" from "not
        expressed", which zeros cannot say.
    presence_datasets : sequence of str, optional
        The dataset id of each row of ``presence`` (Census: ``dataset_id`` of
        ``census_info/datasets`` at each ``soma_joinid``; see the atlas docs page).
    dataset_column : str, default="dataset_id"
        The obs column naming each cell's dataset.

    Attributes
    ----------
    n_obs, n_vars : int
        Cells and genes of the query.
    var_names : ndarray of str
        Gene names, in column order.
    obs : object
        The cells' metadata, read on demand by column (``obs["cell_type"]``).
    columns_read : set of int
        var joinids this object has asked storage for (a record for checks).

    Examples
    --------
    >>> lung = "tissue == 'lung'"
    >>> source = SomaSource("atlas/", obs_value_filter=lung)  # doctest: +SKIP
    >>> sel = YOTOSelector(k=50).fit(source, ["cell_type", "disease"])  # doctest: +SKIP
    """

    def __init__(
        self,
        uri: str,
        measurement: str = "RNA",
        X_layer: str = "data",
        *,
        panel_layer: str | None = None,
        obs_value_filter: str | None = None,
        var_value_filter: str | None = None,
        primary_only: bool | None = None,
        genes: Sequence[str] | None = None,
        gene_column: str | None = None,
        missing_values: Sequence[Any] = ("unknown",),
        chunk_rows: int | None = None,
        buffer_chunks: int = BUFFER_CHUNKS,
        tiledb_config: dict | None = None,
        presence: Any = None,
        presence_datasets: Sequence[str] | None = None,
        dataset_column: str = "dataset_id",
    ) -> None:
        if not isinstance(uri, str | bytes) and not hasattr(uri, "__fspath__"):
            raise TypeError(f"uri must be a path or URI string, got {type(uri)}.")
        self.uri = str(os.fspath(uri))
        if "://" not in self.uri:  # a local folder: absolute, so a worker in another
            # directory (or TileDB's context, which keeps the first cwd) finds it
            self.uri = os.path.abspath(self.uri)
        self.measurement = measurement
        self.X_layer = X_layer
        self.panel_layer = panel_layer
        self.obs_value_filter = obs_value_filter
        self.var_value_filter = var_value_filter
        self.primary_only = primary_only
        self.gene_column = gene_column
        self.missing_values = tuple(missing_values)
        self.shuffle = "chunked"
        self.fixed_chunk_rows = chunk_rows
        self.buffer_chunks = buffer_chunks
        self.threshold = None
        self.tiledb_config = None if tiledb_config is None else dict(tiledb_config)
        self.presence = (
            None if presence is None else sp.csr_matrix(presence, dtype=bool)
        )
        self.presence_datasets = (
            None if presence_datasets is None else [str(d) for d in presence_datasets]
        )
        self.dataset_column = dataset_column
        self.genes_not_measured: list[str] = []
        if self.presence is not None and (
            self.presence_datasets is None
            or len(self.presence_datasets) != self.presence.shape[0]
        ):
            raise ValueError(
                f"presence has {self.presence.shape[0]} rows: give presence_datasets, "
                "one dataset id per row."
            )
        self.columns_read: set[int] = set()
        self._describe(None if genes is None else [str(g) for g in genes])

    # ------------------------------------------------------------------ opening
    def _open(self) -> Any:
        try:
            return open_experiment(self.uri, read_config(self.uri, self.tiledb_config))
        except ImportError:
            raise
        except Exception as err:  # tiledbsoma raises several kinds here
            raise ValueError(
                f"{self.uri!r} is not a readable SOMA experiment ({err})."
            ) from None

    def _describe(self, genes: list[str] | None) -> None:
        """Resolve the query once: cell and gene joinids, names, density."""
        with self._open() as exp:
            if self.measurement not in exp.ms:
                raise ValueError(
                    f"Measurement {self.measurement!r} not in {self.uri!r} "
                    f"(measurements: {sorted(exp.ms.keys())})."
                )
            ms = exp.ms[self.measurement]
            for layer in (self.X_layer, self.panel_layer):
                if layer is not None and ("X" not in ms or layer not in ms.X):
                    layers = sorted(ms.X.keys()) if "X" in ms else []
                    raise ValueError(
                        f"X layer {layer!r} not in measurement "
                        f"{self.measurement!r} (layers: {layers})."
                    )
            if self.panel_layer is not None and tuple(
                ms.X[self.panel_layer].shape
            ) != tuple(ms.X[self.X_layer].shape):
                raise ValueError(
                    f"panel_layer {self.panel_layer!r} has shape "
                    f"{tuple(ms.X[self.panel_layer].shape)}, X layer {self.X_layer!r} "
                    f"{tuple(ms.X[self.X_layer].shape)}: a panel layer holds the "
                    "same cells and genes."
                )
            if self.panel_layer is not None and (
                ms.X[self.panel_layer].metadata.get(PANEL_OF) != self.X_layer
            ):
                raise ValueError(
                    f"panel_layer {self.panel_layer!r} is not a finished copy of X "
                    f"layer {self.X_layer!r} by write_panel_layer (an interrupted "
                    "copy, or another layer, would give wrong values without an "
                    "error): write it with write_panel_layer."
                )
            self.obs_columns = [c for c in exp.obs.schema.names if c != "soma_joinid"]
            var_cols = [c for c in ms.var.schema.names if c != "soma_joinid"]
            column = self.gene_column or next(
                (c for c in NAME_COLUMNS if c in var_cols), None
            )
            if column is None or column not in var_cols:
                raise ValueError(
                    f"gene_column {column!r} is not a var column (var columns: "
                    f"{var_cols})."
                )
            cell_filter = self._cell_filter()
            try:
                obs_ids = (
                    exp.obs.read(column_names=["soma_joinid"], value_filter=cell_filter)
                    .concat()
                    .column("soma_joinid")
                    .to_numpy()
                )
                var = (
                    ms.var.read(
                        column_names=["soma_joinid", column],
                        value_filter=None
                        if genes is not None
                        else self.var_value_filter,
                    )
                    .concat()
                    .to_pandas()
                )
            except Exception as err:  # tiledbsoma's parser raises several kinds
                raise ValueError(f"The SOMA value filter failed: {err}") from None
            datasets = self._slice_datasets(exp, obs_ids)
            self._gene_tiles = gene_tiling(ms.X[self.panel_layer or self.X_layer])
        if genes is not None:
            where = {
                str(g): int(i)
                for g, i in zip(var[column], var["soma_joinid"], strict=True)
            }
            absent = [g for g in genes if g not in where]
            if absent:
                raise ValueError(
                    f"{len(absent)} gene(s) not in var[{column!r}] of {self.uri!r}: "
                    f"{absent[:5]}."
                )
            var_ids = np.asarray([where[g] for g in genes], dtype=np.int64)
            names = np.asarray(genes, dtype=object)
        else:
            var = var.sort_values("soma_joinid")
            var_ids = var["soma_joinid"].to_numpy(np.int64)
            names = var[column].astype(str).to_numpy(dtype=object)
        if datasets is not None:
            var_ids, names = self._measured(datasets, var_ids, names, genes is not None)
        if len(obs_ids) == 0 or len(var_ids) == 0:
            raise ValueError(
                f"The SOMA query selects {len(obs_ids)} cells and {len(var_ids)} "
                f"genes of {self.uri!r} (cell filter: {cell_filter!r}); both must "
                "be non-empty."
            )
        self.gene_column = column
        self.obs_ids = np.sort(obs_ids).astype(np.int64)
        self.var_ids = var_ids
        self.var_names = names
        self.n_obs, self.n_vars = len(self.obs_ids), len(self.var_ids)
        self.obs = _Obs(self)
        self._obs_names: pd.Index | None = None  # built on first use
        # the fraction of stored values (chunk sizes), from the first cells of the
        # query: the array's own nnz reads every value (5.3 s and 5.9 GB peak RSS
        # on 10^6 x 20,000 at 2 %); this sample is not counted in columns_read
        sample = self._matrix(np.arange(min(self.n_obs, DENSITY_SAMPLE)), self.var_ids)
        self._density = sample.nnz / max(sample.shape[0] * self.n_vars, 1)
        self.columns_read = set()

    def _slice_datasets(self, exp: Any, obs_ids: np.ndarray) -> list[str] | None:
        """The datasets of the selected cells (with ``presence`` only)."""
        if self.presence is None:
            return None
        if self.dataset_column not in self.obs_columns:
            raise ValueError(
                f"dataset_column {self.dataset_column!r} is not an obs column "
                f"(columns: {self.obs_columns})."
            )
        if len(obs_ids) == 0:
            return []
        values = (
            exp.obs.read(coords=(obs_ids,), column_names=[self.dataset_column])
            .concat()
            .column(self.dataset_column)
            .to_pylist()
        )
        return sorted({str(v) for v in values})

    def _measured(
        self, datasets: list[str], var_ids: np.ndarray, names: np.ndarray, exact: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Keep the genes every dataset of the slice measured (see ``presence``)."""
        row = {d: i for i, d in enumerate(self.presence_datasets)}
        unknown = [d for d in datasets if d not in row]
        if unknown:
            raise ValueError(
                f"{len(unknown)} dataset(s) of the selected cells are not rows of "
                f"presence: {unknown[:5]}."
            )
        if len(var_ids) and var_ids.max() >= self.presence.shape[1]:
            raise ValueError(
                f"presence has {self.presence.shape[1]} gene columns; the "
                f"measurement has var soma_joinid up to {var_ids.max()}."
            )
        rows = self.presence[[row[d] for d in datasets]][:, var_ids]
        everywhere = np.asarray(rows.sum(axis=0)).ravel() == len(datasets)
        dropped = [str(g) for g in names[~everywhere]]
        if dropped and exact:
            raise ValueError(
                f"{len(dropped)} of the genes asked for were not measured in every "
                f"dataset of the selected cells (they would read as 0): {dropped[:5]}."
            )
        if dropped:
            warnings.warn(
                f"{len(dropped)} of {len(names)} genes were not measured in every "
                f"dataset of the selected cells ({len(datasets)} datasets) and are "
                "left out (source.genes_not_measured lists them).",
                UserWarning,
                stacklevel=4,
            )
        self.genes_not_measured = dropped
        return var_ids[everywhere], names[everywhere]

    def _cell_filter(self) -> str | None:
        primary = self.primary_only
        if primary is None:
            primary = "is_primary_data" in self.obs_columns
        parts = [p for p in (self.obs_value_filter,) if p]
        if primary:
            parts.append("is_primary_data == True")
        return " and ".join(f"({p})" for p in parts) or None

    def with_genes(self, genes: Sequence[str]) -> SomaSource:
        """The same cells with exactly ``genes`` as columns (for a fitted model)."""
        return SomaSource(
            self.uri, self.measurement, self.X_layer, panel_layer=self.panel_layer,
            obs_value_filter=self.obs_value_filter, primary_only=self.primary_only,
            genes=genes, gene_column=self.gene_column,
            missing_values=self.missing_values, chunk_rows=self.fixed_chunk_rows,
            buffer_chunks=self.buffer_chunks, tiledb_config=self.tiledb_config,
            presence=self.presence, presence_datasets=self.presence_datasets,
            dataset_column=self.dataset_column,
        )  # fmt: skip

    # --------------------------------------------- scikit-learn's row indexing
    @property
    def shape(self) -> tuple[int, int]:
        """``(n_obs, n_vars)``, so scikit-learn's splitters can count the cells."""
        return (self.n_obs, self.n_vars)

    def __len__(self) -> int:
        return self.n_obs

    def __getitem__(self, rows: Any) -> SomaSource:
        """The same query restricted to cells ``rows`` (positions), in that order.

        What cross-validation does to ``X``; nothing is read.
        """
        rows = np.arange(self.n_obs)[rows]
        sub = copy.copy(self)
        sub.obs_ids = self.obs_ids[np.atleast_1d(rows)]
        sub.n_obs = len(sub.obs_ids)
        sub._obs_names = None
        sub.obs = _Obs(sub)
        sub.columns_read = set()
        sub.chunk_store = None  # chunks of other cells
        return sub

    @property
    def obs_names(self) -> pd.Index:
        """The cells' names: their ``soma_joinid`` as strings, in row order."""
        if self._obs_names is None:
            self._obs_names = pd.Index(self.obs_ids.astype(str))
        return self._obs_names

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict:
        # the names are rebuilt where needed: pickling 10^6 of them took 0.48 s,
        # paid for every row range a joblib worker reads (n_jobs)
        state = dict(self.__dict__)
        state.pop("obs", None)
        state.pop("chunk_store", None)
        state["_obs_names"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.obs = _Obs(self)

    # ------------------------------------------------------------------ reading
    def read_obs(self, columns: list[str]) -> pd.DataFrame:
        """Obs columns of the query's cells, in row order; missing values as NaN."""
        unknown = [c for c in columns if c not in self.obs_columns]
        if unknown:
            raise ValueError(
                f"Column(s) {unknown} not in the obs of {self.uri!r} (columns: "
                f"{self.obs_columns})."
            )
        with self._open() as exp:
            frame = (
                exp.obs.read(
                    coords=(self.obs_ids,), column_names=["soma_joinid", *columns]
                )
                .concat()
                .to_pandas()
                .set_index("soma_joinid")
                .reindex(self.obs_ids)
            )
        frame.index = self.obs_names
        for c in columns:
            col = frame[c]
            if col.dtype.kind in "OUS" or isinstance(col.dtype, pd.CategoricalDtype):
                col = col.astype(object)
                frame[c] = col.where(~col.isin(self.missing_values), np.nan)
        return frame[columns]

    def _entries(
        self, rows: np.ndarray, var_ids: np.ndarray, layer: str | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions ``(i, j)`` and values stored for ``rows`` x joinids ``var_ids``."""
        self.columns_read.update(var_ids.tolist())
        obs_ids = self.obs_ids[rows]
        cell_order = np.argsort(obs_ids, kind="stable")  # a subset may be unsorted
        order = np.argsort(var_ids, kind="stable")
        sorted_obs, sorted_var = obs_ids[cell_order], var_ids[order]
        coords = (read_coordinate(sorted_obs), read_coordinate(sorted_var))
        with self._open() as exp:
            array = exp.ms[self.measurement].X[layer or self.X_layer]
            table = array.read(coords=coords).tables().concat()
        found = table.column("soma_dim_0").to_numpy()
        i = read_positions(sorted_obs, cell_order, coords[0], found)
        found = table.column("soma_dim_1").to_numpy()
        j = read_positions(sorted_var, order, coords[1], found)
        data = table.column("soma_data").to_numpy().astype(np.float32, copy=False)
        return i, j, data

    def _matrix(
        self, rows: np.ndarray, var_ids: np.ndarray, layer: str | None = None
    ) -> sp.csr_matrix:  # cells rows (positions) x genes var_ids (joinids)
        i, j, data = self._entries(rows, var_ids, layer)
        return sp.csr_matrix((data, (i, j)), shape=(len(rows), len(var_ids)))

    def read_chunk(self, start: int, stop: int) -> sp.csr_matrix:
        """The query's cells ``start:stop`` (a contiguous joinid run), as CSR.

        With a ``binarize`` threshold (set by the estimator), their detection.
        """
        return self._native(self._matrix(np.arange(start, stop), self.var_ids))

    def panel_rows(self, cols: np.ndarray) -> int:
        """Rows per panel block: as many as decompress about one row chunk.

        TileDB decompresses every tile that holds a cell of the rows and columns
        asked for: with tiledbsoma's default tiling (2,048 genes per tile) each
        tile holds some panel gene, so a panel read of all 10^6 cells held 7 GB
        (and took 33 s), and a panel block covers one row chunk of cells. When
        the array's gene tiles are narrower than that, a panel touches only a
        fraction of them, and a block covers proportionally more cells (at most
        ``CHUNK_ENTRIES`` panel values): with 16-gene tiles 50 panel genes touch
        about 4 % of the tiles, and the panel of 10^5 cells was read in 0.44 s,
        against 4.26 s with the default tiling (``bench_soma_layout.md`` in
        ``benchmarks/results``; :func:`write_panel_layer` writes such a layer).
        """
        rows = self.chunk_rows(1)
        if self._gene_tiles is not None:
            tile, total = self._gene_tiles
            touched = len(np.unique(self.var_ids[np.asarray(cols)] // tile))
            rows = int(rows * total / max(touched, 1))
        return max(min(rows, CHUNK_ENTRIES // max(len(cols), 1), self.n_obs), 1)

    def read_panel(self, cols: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Float64 cells ``start:stop`` of columns ``cols``: only they are read."""
        ids = self.var_ids[np.asarray(cols)]
        i, j, values = self._entries(np.arange(start, stop), ids, self.panel_layer)
        block = np.zeros((stop - start, len(ids)))  # filled directly: no CSR between
        block[i, j] = values
        block = dense_float(self._native(block), np.float64)
        check_finite_panel(block, start, stop)
        return block


def write_panel_layer(
    uri: str,
    layer: str = "panel",
    *,
    measurement: str = "RNA",
    X_layer: str = "data",
    cells_per_tile: int = PANEL_TILING["cells_per_tile"],
    genes_per_tile: int = PANEL_TILING["genes_per_tile"],
    capacity: int = PANEL_TILING["capacity"],
    chunk_rows: int | None = None,
    tiledb_config: dict | None = None,
) -> str:
    """Copy an X layer into a new layer tiled for panel reads (``panel_layer``).

    With tiledbsoma's default tiling (2,048 x 2,048 space tiles, 100,000 values
    per data tile) every tile of a cell range holds some of any 50 genes, so a
    panel read decompresses nearly all of it. This layer has narrow gene tiles
    (``genes_per_tile``), long cell tiles and small data tiles, so a panel read
    touches only the tiles of its genes; row reads of it are slower, which is why
    training keeps reading ``X_layer``. Measured on 10^5 cells x 20,000 genes
    (``benchmarks/results/bench_soma_layout.md``): every cell's 50-gene panel in
    0.43 s, against 4.26 s with the default tiling and 0.68 s from a page-cached
    backed h5ad of the same cells. The copy goes row chunk by row chunk (every
    cell of the layer, not a query), so memory stays at a few chunks; the
    experiment grows by about the size of ``X_layer``. Values are stored as
    float32, as :class:`SomaSource` reads them. The layer is marked as a copy of
    ``X_layer`` only once every chunk is written (``SomaSource`` refuses an
    unmarked one); it is a snapshot, so write it again after changing ``X_layer``.

    Parameters
    ----------
    uri : str
        The experiment (opened for writing).
    layer : str, default="panel"
        Name of the new X layer; must not exist yet.
    measurement, X_layer : str
        The layer to copy (``exp.ms[measurement].X[X_layer]``).
    cells_per_tile, genes_per_tile, capacity : int
        The new layer's space tile (cells x genes) and values per data tile.
    chunk_rows : int, optional
        Cells per read of ``X_layer`` (default: about 4 million stored values).
    tiledb_config : dict, optional
        TileDB configuration for opening the experiment.

    Returns
    -------
    str
        ``layer``, for ``SomaSource(uri, panel_layer=...)``.
    """
    require_tiledbsoma()
    import pyarrow as pa

    if not isinstance(layer, str) or not layer:
        raise TypeError(f"layer must be a non-empty string, got {layer!r}.")
    for name, value in (
        ("cells_per_tile", cells_per_tile),
        ("genes_per_tile", genes_per_tile),
        ("capacity", capacity),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"{name} must be a positive int, got {value!r}.")
        if value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}.")
    source = SomaSource(
        uri,
        measurement,
        X_layer,
        primary_only=False,
        chunk_rows=chunk_rows,
        tiledb_config=tiledb_config,
    )
    with source._open() as exp:
        if layer in exp.ms[measurement].X:
            raise ValueError(
                f"X layer {layer!r} already exists in measurement {measurement!r}."
            )
        shape = tuple(int(n) for n in exp.ms[measurement].X[X_layer].shape)
    dims = {
        "soma_dim_0": {"tile": int(cells_per_tile)},
        "soma_dim_1": {"tile": int(genes_per_tile)},
    }
    config = {"tiledb": {"create": {"capacity": int(capacity), "dims": dims}}}

    def write(array: Any, parts: list) -> None:
        i, j, v = (np.concatenate(c) for c in zip(*parts, strict=True))
        array.write(pa.table({"soma_dim_0": i, "soma_dim_1": j, "soma_data": v}))

    config_of = read_config(source.uri, source.tiledb_config)
    with open_experiment(source.uri, config_of, "w") as exp:
        array = exp.ms[measurement].X.add_new_sparse_ndarray(
            layer, type=pa.float32(), shape=shape, platform_config=config
        )
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        held = 0
        for start, block in source.chunks():  # the next chunk is read meanwhile
            block = block.tocoo()
            cells, genes = source.obs_ids[start + block.row], source.var_ids[block.col]
            parts.append((cells, genes, block.data))
            held += block.nnz
            if held >= 4 * CHUNK_ENTRIES:  # few large writes: each is a fragment
                write(array, parts)
                parts, held = [], 0
        if parts:
            write(array, parts)
        array.metadata[PANEL_OF] = X_layer  # complete: SomaSource may use it
    return layer
