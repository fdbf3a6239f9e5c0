"""Container adapters: AnnData unwrapping, mini-batch row access, target encoding."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._validation import check_float32_range

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASK_TYPES = (CLASSIFICATION, REGRESSION)
# A numeric column whose observed values are all whole numbers and that has at most
# this many distinct values is read as class labels (e.g. ``[0., 1., nan]``); with more,
# as a regression target (see :func:`detect_task_type`). Override with ``task_types``.
MAX_AUTO_FLOAT_CLASSES = 100


def is_anndata(obj: Any) -> bool:
    """Whether ``obj`` is an AnnData object (without importing anndata)."""
    return type(obj).__name__ in ("AnnData", "Raw") and hasattr(obj, "var_names")


def _short_list(items: list, limit: int = 10) -> str:
    """``items`` for an error message: at most ``limit`` entries, then a count."""
    shown = ", ".join(repr(i) for i in items[:limit])
    more = len(items) - limit
    return f"[{shown}{f', ... ({more} more)' if more > 0 else ''}]"


def unwrap_anndata(X: Any, y: Any) -> tuple[Any, np.ndarray | None, Any]:
    """Return ``(matrix, gene_names, y)`` for AnnData ``X``; other inputs pass through.

    For AnnData, ``y`` may be a column name or a list of column names of ``X.obs``.
    A list of strings that are not all obs columns is read as one label per cell
    when it has ``n_obs`` entries. A pandas ``y`` indexed by cell names is aligned on
    ``X.obs_names`` (see :func:`align_on_obs_names`).
    """
    if not is_anndata(X):
        return X, None, y
    names = np.asarray(X.var_names, dtype=object)
    columns = list(X.obs.columns)
    if isinstance(y, str) or (
        isinstance(y, list | tuple)
        and len(y) > 0
        and all(isinstance(c, str) for c in y)
    ):
        cols = [y] if isinstance(y, str) else list(y)
        missing = [c for c in cols if c not in X.obs.columns]
        if not missing:
            y = X.obs[cols[0]] if isinstance(y, str) else X.obs[cols]
        elif not isinstance(y, str) and len(cols) == X.n_obs:
            y = np.asarray(cols, dtype=object)  # one label per cell, not names
        else:
            raise ValueError(
                f"Target column(s) {_short_list(missing, 5)} not found in adata.obs "
                f"(columns: {_short_list(columns)}). To pass labels instead of "
                f"column names, give one label per cell ({X.n_obs})."
            )
    else:
        y = align_on_obs_names(y, X.obs_names)
    matrix = X.X
    if matrix is None:
        raise ValueError("adata.X is None; put the expression matrix in adata.X.")
    return matrix, names, y


def align_on_obs_names(y: Any, obs_names: pd.Index) -> Any:
    """Align a pandas ``y`` indexed by cell names on ``obs_names``.

    ``y`` with a string index is matched to the cells by name (reordered when it
    lists the same cells in another order); a different set of names is an error,
    since matching by position would pair labels with the wrong cells. Any other
    ``y`` (arrays, lists, pandas objects with an integer index) is positional.

    Raises
    ------
    ValueError
        If ``y``'s string index is not a reordering of ``obs_names``.
    """
    if not isinstance(y, pd.Series | pd.DataFrame):
        return y
    index = y.index
    if not (pd.api.types.is_object_dtype(index) or pd.api.types.is_string_dtype(index)):
        return y
    if not all(isinstance(i, str) for i in index):
        return y
    if index.equals(obs_names):
        return y
    if (
        len(index) == len(obs_names)
        and index.is_unique
        and obs_names.is_unique
        and set(index) == set(obs_names)
    ):
        return y.reindex(obs_names)
    unknown = [i for i in index[: len(obs_names) + 1] if i not in set(obs_names)]
    raise ValueError(
        "y is indexed by cell names that are not adata.obs_names"
        + (f" (e.g. {_short_list(unknown, 3)})" if unknown else "")
        + f"; y has {len(index)} entries, adata {len(obs_names)} cells. Pass "
        "y.to_numpy() to match labels to cells by position."
    )


class RowSource:
    """Row access to an in-memory matrix, densified one mini-batch at a time.

    CSC input is converted to CSR once (a copy of the non-zeros, never a dense
    matrix), since mini-batches are rows.

    Parameters
    ----------
    X : ndarray or sparse matrix
        The validated matrix, cells by genes.
    shuffle : {"full", "chunked"}, default="full"
        Batch order of :meth:`batches`: a full permutation of the rows, or the
        chunk-wise shuffle of :func:`chunked_permutation` that a backed source uses
        (so an in-memory fit can reproduce a backed fit exactly).
    """

    shuffle = "full"

    def __init__(
        self, X: np.ndarray | sp.spmatrix | sp.sparray, shuffle: str | None = None
    ) -> None:
        if sp.issparse(X) and X.format != "csr":
            X = sp.csr_matrix(X)
        self.X = X
        self.n_obs, self.n_vars = X.shape
        if shuffle is not None:
            self.shuffle = shuffle
        self.chunk_rows: int | None = None

    def rows(self, idx: np.ndarray) -> np.ndarray:
        """Dense float32 rows ``idx`` (a 1-D integer array)."""
        block = self.X[idx]
        if sp.issparse(block):
            block = block.toarray()
        return np.asarray(block, dtype=np.float32)

    @property
    def density(self) -> float:
        """Fraction of stored values (1 for a dense matrix)."""
        if not sp.issparse(self.X):
            return 1.0
        return self.X.nnz / max(self.n_obs * self.n_vars, 1)

    def _chunk_rows(self, batch_size: int) -> int:
        return self.chunk_rows or default_chunk_rows(
            self.n_vars, self.density, batch_size
        )

    def batches(
        self,
        idx: np.ndarray,
        batch_size: int,
        rng: np.random.Generator | None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(rows, dense float32 block)`` mini-batches over ``idx``.

        With ``rng=None`` the batches follow the sorted ``idx`` (evaluation);
        otherwise the order is shuffled (see ``shuffle``). The rows of each batch are
        sorted.
        """
        if rng is None:
            order = np.sort(idx)
        elif self.shuffle == "chunked":
            order = chunked_permutation(idx, rng, self._chunk_rows(batch_size))[0]
        else:
            order = rng.permutation(idx)
        for start in range(0, len(order), batch_size):
            batch = np.sort(order[start : start + batch_size])
            yield batch, self.rows(batch)

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[int, Any]]:
        """Yield ``(start, block)`` for contiguous row blocks (sparse stays sparse)."""
        step = chunk_rows or self._chunk_rows(1)
        for start in range(0, self.n_obs, step):
            yield start, self.X[start : start + step]


class BinarizedSource:
    """A row source whose values are ``1.0`` where ``x > threshold``, else ``0.0``.

    Wraps a :class:`RowSource` or :class:`BackedRowSource` (same batches, same
    order): the platform-robust "detected / not detected" input that PERSIST trains
    on for the shift from scRNA-seq to targeted assays. Sparse chunks stay sparse
    (``threshold >= 0`` keeps zeros zero).
    """

    def __init__(self, source: RowSource, threshold: float) -> None:
        self.source = source
        self.threshold = float(threshold)
        self.n_obs, self.n_vars = source.n_obs, source.n_vars

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)

    def _binary(self, block: Any) -> Any:
        if sp.issparse(block):
            block = sp.csr_matrix(block, dtype=np.float32, copy=True)
            block.data = (block.data > self.threshold).astype(np.float32)
            block.eliminate_zeros()
            return block
        return (np.asarray(block) > self.threshold).astype(np.float32)

    def rows(self, idx: np.ndarray) -> np.ndarray:
        """Binarised dense rows ``idx``."""
        return self._binary(self.source.rows(idx))

    def batches(
        self, idx: np.ndarray, batch_size: int, rng: np.random.Generator | None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The wrapped source's mini-batches, binarised."""
        for rows, block in self.source.batches(idx, batch_size, rng):
            yield rows, self._binary(block)

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[int, Any]]:
        """The wrapped source's row chunks, binarised."""
        for start, block in self.source.chunks(chunk_rows):
            yield start, self._binary(block)


@dataclass
class TaskSpec:
    """What one target column is and how it is encoded."""

    name: str
    kind: str
    classes: np.ndarray | None = None
    mean: float = 0.0
    std: float = 1.0
    class_counts: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_outputs(self) -> int:
        """Width of this task's head."""
        return len(self.classes) if self.kind == CLASSIFICATION else 1


def _as_frame(y: Any) -> pd.DataFrame:
    """Targets as a DataFrame with string column names (one column per task)."""
    if isinstance(y, pd.DataFrame):
        frame = y.copy(deep=False)
        frame.columns = [str(c) for c in frame.columns]
    elif isinstance(y, pd.Series):
        frame = y.to_frame(name=str(y.name) if y.name is not None else "task0")
    else:
        if sp.issparse(y):
            raise TypeError(
                "Sparse y is not supported; pass a dense array or DataFrame."
            )
        arr = np.asarray(y)
        if arr.ndim == 0:
            raise ValueError(f"y must be 1-D or 2-D, got a scalar: {y!r}.")
        if arr.ndim > 2:
            raise ValueError(
                f"y must be 1-D or 2-D, got an array of shape {arr.shape}."
            )
        if arr.ndim == 1:
            arr = arr[:, None]
        frame = pd.DataFrame(
            {f"task{j}": arr[:, j] for j in range(arr.shape[1])}, index=None
        )
    if len(set(frame.columns)) != frame.shape[1]:
        raise ValueError(f"Duplicate target column names: {list(frame.columns)}.")
    return frame


def detect_task_type(column: pd.Series) -> str:
    """The task type of one target column: the one rule of every door.

    ``YOTOSelector.fit`` (``task_types=None``), :func:`yoto_sklearn.anndata.
    select_genes` and the ``yoto-sklearn fit`` command all use this rule; pass
    ``task_types`` (``--categorical`` / ``--regression`` on the command line) to
    override it. Missing labels are ignored.

    - text, categories and booleans: ``"classification"``;
    - numbers (integer or float dtype, or an object column holding only numbers):
      ``"classification"`` when every observed value is a whole number and there
      are at most ``MAX_AUTO_FLOAT_CLASSES`` (100) distinct values (``0/1``, cluster
      ids, stages), else ``"regression"`` (scores, ages, counts with many values;
      whole numbers with more values also warn, in case they are labels);
    - dates, time spans and complex numbers: a ``TypeError``.

    Parameters
    ----------
    column : pandas.Series
        The target column.

    Returns
    -------
    task_type : {"classification", "regression"}
        The task type.

    Raises
    ------
    TypeError
        For a dtype that is neither labels nor numbers.
    """
    dtype = column.dtype
    observed = column[~pd.isna(column).to_numpy()]
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return CLASSIFICATION
    if (
        pd.api.types.is_complex_dtype(dtype)
        or pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
    ):
        raise TypeError(
            f"Target column {column.name!r} has dtype {dtype}, which is neither "
            "labels (text, categories, booleans) nor numbers."
        )
    if pd.api.types.is_numeric_dtype(dtype):
        return _numbers_kind(observed.to_numpy(dtype=np.float64), column.name)
    kinds = {type(v) for v in observed}
    if (
        kinds
        and all(issubclass(t, numbers.Real) for t in kinds)
        and not any(issubclass(t, bool | np.bool_) for t in kinds)
    ):
        # object column of plain numbers: decide like the numeric dtypes do
        return _numbers_kind(observed.to_numpy(dtype=np.float64), column.name)
    return CLASSIFICATION


def _whole(values: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))


def _numbers_kind(values: np.ndarray, name: Any) -> str:
    if not _whole(values):
        return REGRESSION
    if len(np.unique(values)) <= MAX_AUTO_FLOAT_CLASSES:
        return CLASSIFICATION
    warnings.warn(
        f"Target column {name!r} holds whole numbers with more than "
        f"{MAX_AUTO_FLOAT_CLASSES} distinct values: it is treated as a regression "
        "target. If they are class labels (e.g. patient ids), pass "
        f"task_types={{{name!r}: 'classification'}}.",
        UserWarning,
        stacklevel=4,
    )
    return REGRESSION


def _resolve_types(task_types: Any, names: list[str]) -> list[str | None]:
    if task_types is None or task_types == "auto":
        return [None] * len(names)
    if isinstance(task_types, str):
        out = [task_types] * len(names)
    elif isinstance(task_types, dict):
        unknown = set(map(str, task_types)) - set(names)
        if unknown:
            raise ValueError(
                f"task_types names unknown tasks {sorted(unknown)}; tasks are {names}."
            )
        out = [task_types.get(n) for n in names]
    elif isinstance(task_types, list | tuple):
        if len(task_types) != len(names):
            raise ValueError(
                f"task_types has {len(task_types)} entries but y has {len(names)} "
                "task column(s)."
            )
        out = list(task_types)
    else:
        raise TypeError(
            "task_types must be None, 'auto', a str, a list or a dict; got "
            f"{type(task_types).__name__}."
        )
    for t in out:
        if t is not None and t not in TASK_TYPES + ("auto",):
            raise ValueError(
                f"Unknown task type {t!r}; use 'classification' or 'regression'."
            )
    return [None if t == "auto" else t for t in out]


def targets_frame(y: Any, n_samples: int) -> pd.DataFrame:
    """Validate the shape of ``y`` and return it as a DataFrame of tasks."""
    frame = _as_frame(y)
    if frame.shape[0] != n_samples:
        raise ValueError(
            f"X and y have inconsistent numbers of samples: X has {n_samples}, "
            f"y has {frame.shape[0]}."
        )
    if frame.shape[1] == 0:
        raise ValueError("y has no task column.")
    return frame


def match_task_columns(
    y: Any, frame: pd.DataFrame, task_names: list[str]
) -> pd.DataFrame:
    """Order the target columns of ``frame`` like the fitted tasks.

    A DataFrame ``y`` with string column names is matched by name (reordered when
    its columns are the fitted tasks in another order); other ``y`` (arrays,
    Series, integer column names) are matched by position, as is any ``y`` for a
    model fitted without task names (``task0``, ``task1``, ...).

    Raises
    ------
    ValueError
        If the number of columns differs, or named columns are not the fitted tasks.
    """
    if frame.shape[1] != len(task_names):
        raise ValueError(
            f"y has {frame.shape[1]} task column(s) but the model was fitted on "
            f"{len(task_names)}."
        )
    if not (isinstance(y, pd.DataFrame) and all(isinstance(c, str) for c in y.columns)):
        return frame
    names = list(frame.columns)
    if names == list(task_names):
        return frame
    if set(names) == set(task_names):
        return frame[list(task_names)]
    if list(task_names) == [f"task{j}" for j in range(len(task_names))]:
        return frame  # fitted on unnamed targets: nothing to match names against
    raise ValueError(
        f"y's columns {names} are not the tasks seen at fit {list(task_names)}; "
        "name the columns like the fitted tasks, or pass an array to match them by "
        "position."
    )


def _mean_std(values: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Mean, standard deviation and standardised values, without overflow.

    The values are divided by their largest magnitude first, so targets near the
    float64 limit (where ``values.std()`` overflows to inf) are standardised
    correctly. A constant target gets a standard deviation of 1.
    """
    scale = float(np.max(np.abs(values)))
    if scale == 0.0:
        return 0.0, 1.0, np.zeros_like(values)
    unit = values / scale
    mean_u, std_u = float(unit.mean()), float(unit.std())
    if not std_u > 1e-12:
        return mean_u * scale, 1.0, unit - mean_u  # ~0 after centring
    return mean_u * scale, std_u * scale, (unit - mean_u) / std_u


def _label_kind(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, numbers.Number):
        return "number"
    return type(value).__name__


def encode_targets(
    y: Any, n_samples: int, task_types: Any
) -> tuple[list[TaskSpec], np.ndarray]:
    """Encode every task column.

    Returns the task specifications and a float32 array of shape
    ``(n_samples, n_tasks)``: class codes for classification, standardised values for
    regression, NaN where the label is missing.
    """
    frame = targets_frame(y, n_samples)
    names = list(frame.columns)
    kinds = _resolve_types(task_types, names)
    specs: list[TaskSpec] = []
    encoded = np.full((n_samples, len(names)), np.nan, dtype=np.float32)
    for j, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        col = frame.iloc[:, j]
        missing = pd.isna(col).to_numpy()
        observed = col[~missing]
        if len(observed) == 0:
            raise ValueError(
                f"Target column {name!r} has no observed label (all values missing)."
            )
        if kind is None:
            kind = detect_task_type(col)
        if kind == REGRESSION:
            try:
                values = observed.to_numpy(dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"Target column {name!r} is a regression task but holds "
                    "non-numeric values."
                ) from exc
            if not np.all(np.isfinite(values)):
                raise ValueError(
                    f"Target column {name!r} contains infinity; use NaN for a missing "
                    "label."
                )
            mean, std, standardised = _mean_std(values)
            encoded[~missing, j] = standardised.astype(np.float32)
            specs.append(TaskSpec(name, REGRESSION, mean=mean, std=std))
            continue
        values = observed.to_numpy()
        if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
            raise ValueError(
                f"Target column {name!r} contains infinity; use NaN for a missing "
                "label."
            )
        if values.dtype == object:
            kinds_seen = {_label_kind(v) for v in values}
            if len(kinds_seen) > 1:
                raise TypeError(
                    f"Target column {name!r} mixes label types {sorted(kinds_seen)}; "
                    "use one type per column."
                )
            if kinds_seen == {"bool"}:
                # Python bools (what a bool obs column becomes once missing labels
                # are None): keep them booleans, not 0.0 / 1.0
                values = values.astype(bool)
            elif kinds_seen == {"number"}:
                whole = all(isinstance(v, numbers.Integral) for v in values)
                # integers (e.g. an int obs column with missing labels) stay ints
                values = values.astype(np.int64 if whole else np.float64)
                if not np.all(np.isfinite(values)):
                    raise ValueError(
                        f"Target column {name!r} contains infinity; use NaN for a "
                        "missing label."
                    )
        try:
            classes, codes, counts = np.unique(
                values, return_inverse=True, return_counts=True
            )
        except TypeError as exc:
            raise TypeError(
                f"Target column {name!r} holds labels that cannot be compared "
                f"({exc}); use one label type per column."
            ) from exc
        if len(classes) < 2:
            raise ValueError(
                f"Classification task {name!r} has only one class "
                f"({np.asarray(classes[0]).item()!r}) "
                "among its observed labels: 1 class is not enough to learn from."
            )
        encoded[~missing, j] = codes.astype(np.float32)
        specs.append(
            TaskSpec(name, CLASSIFICATION, classes=classes, class_counts=counts)
        )
    return specs, encoded


# --------------------------------------------------------------------------------------
# Batch order and streaming access (sparse in memory, or backed on disk)
# --------------------------------------------------------------------------------------
# A contiguous chunk of rows holds about ``CHUNK_ENTRIES`` stored values (16 MiB of
# float32 when dense, about 32 MiB for CSR); a shuffle buffer holds ``BUFFER_CHUNKS``
# chunks (kept sparse for sparse data).
CHUNK_ENTRIES = 1 << 22
BUFFER_CHUNKS = 4


def default_chunk_rows(n_vars: int, density: float, batch_size: int) -> int:
    """Rows per contiguous read: about ``CHUNK_ENTRIES`` stored values, >= one batch.

    It depends only on the shape, the fraction of stored values (1 for dense) and the
    batch size, not on the storage, so an in-memory and a backed source of the same
    data cut the same chunks.
    """
    per_row = max(float(n_vars) * min(max(float(density), 1e-6), 1.0), 1.0)
    return max(int(batch_size), int(CHUNK_ENTRIES / per_row), 1)


def chunked_permutation(
    idx: np.ndarray,
    rng: np.random.Generator,
    chunk_rows: int,
    buffer_chunks: int = BUFFER_CHUNKS,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Shuffle ``idx`` chunk-wise, as a streaming reader can afford to.

    The row range is cut into contiguous chunks of ``chunk_rows`` rows; the order of
    the chunks is shuffled, consecutive groups of ``buffer_chunks`` chunks form a
    buffer, and the rows of each buffer are shuffled together. When every row fits in
    one buffer this is exactly ``rng.permutation(idx)``.

    Returns
    -------
    order : ndarray
        The permuted rows (the concatenation of the buffers).
    buffers : list of ndarray
        The chunk numbers of each buffer, in order.
    """
    idx = np.asarray(idx)
    chunks = np.unique(idx // chunk_rows)
    if len(chunks) <= buffer_chunks:
        return rng.permutation(idx), [chunks]
    chunk_order = rng.permutation(chunks)
    sorted_idx = np.sort(idx)
    parts: list[np.ndarray] = []
    buffers: list[np.ndarray] = []
    for b in range(0, len(chunk_order), buffer_chunks):
        group = chunk_order[b : b + buffer_chunks]
        parts.append(rng.permutation(rows_in_chunks(sorted_idx, group, chunk_rows)))
        buffers.append(group)
    return np.concatenate(parts), buffers


def rows_in_chunks(
    sorted_idx: np.ndarray, chunk_ids: np.ndarray, chunk_rows: int
) -> np.ndarray:
    """The rows of ``sorted_idx`` that lie in chunks ``chunk_ids``, sorted."""
    parts = []
    for c in np.sort(chunk_ids):
        lo, hi = np.searchsorted(sorted_idx, [c * chunk_rows, (c + 1) * chunk_rows])
        parts.append(sorted_idx[lo:hi])
    return np.concatenate(parts) if parts else sorted_idx[:0]


def is_backed_matrix(X: Any) -> bool:
    """Whether ``X`` is an on-disk matrix (h5py dataset, anndata sparse dataset)."""
    if sp.issparse(X) or isinstance(X, np.ndarray):
        # in memory, including anndata's view classes (SparseCSRMatrixView, ...)
        return False
    module = type(X).__module__ or ""
    if module.startswith("h5py") and hasattr(X, "shape") and hasattr(X, "dtype"):
        return True
    if module.startswith("anndata") and hasattr(X, "format"):
        return True
    try:
        from anndata.abc import CSCDataset, CSRDataset
    except ImportError:  # pragma: no cover - anndata is a dependency
        return False
    return isinstance(X, CSRDataset | CSCDataset)


def _block_to_numpy(block: Any) -> np.ndarray | sp.csr_matrix:
    if sp.issparse(block):
        return sp.csr_matrix(block)
    return np.asarray(block)


class BackedRowSource(RowSource):
    """Streaming row access to a backed AnnData matrix (``read_h5ad(..., "r")``).

    Rows are read from disk in contiguous chunks; :meth:`batches` shuffles the chunk
    order and the rows inside a buffer of ``BUFFER_CHUNKS`` chunks, so at most one
    buffer (kept sparse when the file is sparse) and one dense mini-batch are in
    memory. Dense (``h5py.Dataset``) and CSR datasets are supported; a CSC dataset
    cannot be read by rows and is refused.

    Parameters
    ----------
    X : h5py.Dataset or anndata CSRDataset
        The backed matrix, cells by genes.
    """

    shuffle = "chunked"

    def __init__(self, X: Any) -> None:
        fmt = getattr(X, "format", None)
        if fmt == "csc":
            raise ValueError(
                "A backed AnnData whose X is stored as CSC cannot be streamed by "
                "rows; rewrite it as CSR (adata.X = adata.X.tocsr() before "
                "write_h5ad) or load it into memory."
            )
        dtype = np.dtype(X.dtype)
        if dtype.kind not in "biuf":
            raise ValueError(f"Backed X has a non-numeric dtype {dtype}.")
        if len(X.shape) != 2:
            raise ValueError(f"Backed X must be 2-D, got shape {X.shape}.")
        self.X = X
        self.n_obs, self.n_vars = (int(s) for s in X.shape)
        self.chunk_rows = None
        if fmt == "csr":
            nnz = int(X.group["indptr"][-1])
            self._density = nnz / max(self.n_obs * self.n_vars, 1)
        else:
            self._density = 1.0

    @property
    def density(self) -> float:
        """Fraction of stored values (1 for a dense dataset)."""
        return self._density

    def _read(self, start: int, stop: int) -> np.ndarray | sp.csr_matrix:
        return _block_to_numpy(self.X[start:stop])

    def rows(self, idx: np.ndarray) -> np.ndarray:
        """Dense float32 rows ``idx``, read as one contiguous span (small ``idx``)."""
        idx = np.asarray(idx)
        order = np.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        lo = int(sorted_idx[0]) if len(idx) else 0
        hi = int(sorted_idx[-1]) + 1 if len(idx) else 0
        block = self._read(lo, hi)[sorted_idx - lo]
        if sp.issparse(block):
            block = block.toarray()
        out = np.empty((len(idx), self.n_vars), dtype=np.float32)
        out[order] = block
        return out

    def chunks(self, chunk_rows: int | None = None) -> Iterator[tuple[int, Any]]:
        """Yield ``(start, block)`` for contiguous row blocks read from disk."""
        step = chunk_rows or self._chunk_rows(1)
        for start in range(0, self.n_obs, step):
            yield start, self._read(start, min(start + step, self.n_obs))

    def _load(
        self, chunk_ids: np.ndarray, members: np.ndarray, chunk_rows: int
    ) -> tuple[np.ndarray, Any]:
        """Read the chunks ``chunk_ids`` and keep rows ``members`` (sorted)."""
        blocks = []
        ids = []
        for c in np.sort(chunk_ids):
            start = int(c) * chunk_rows
            stop = min(start + chunk_rows, self.n_obs)
            want = members[(members >= start) & (members < stop)]
            if len(want) == 0:
                continue
            block = self._read(start, stop)
            # no copy when every row of the chunk is wanted (the usual case)
            blocks.append(block if len(want) == stop - start else block[want - start])
            ids.append(want)
        if not blocks:
            return np.empty(0, dtype=np.int64), np.empty((0, self.n_vars), np.float32)
        if len(blocks) == 1:
            return ids[0], blocks[0]
        stack = sp.vstack(blocks, format="csr") if sp.issparse(blocks[0]) else None
        return np.concatenate(ids), stack if stack is not None else np.vstack(blocks)

    def batches(
        self,
        idx: np.ndarray,
        batch_size: int,
        rng: np.random.Generator | None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(rows, dense float32 block)`` mini-batches streamed from disk.

        Same batches as :meth:`RowSource.batches` with ``shuffle="chunked"`` (or in
        ``idx`` order with ``rng=None``), so results match an in-memory fit that uses
        the chunked order.
        """
        idx = np.asarray(idx)
        chunk_rows = self._chunk_rows(batch_size)
        if rng is None:
            order = np.sort(idx)
            buffers = [np.array([c]) for c in np.unique(idx // chunk_rows)]
        else:
            order, buffers = chunked_permutation(idx, rng, chunk_rows)
        offset = 0  # position in ``order`` of the first row of the current buffer
        held_ids = np.empty(0, dtype=np.int64)
        held: Any = None
        sorted_idx = np.sort(idx)
        for group in buffers:
            members = rows_in_chunks(sorted_idx, group, chunk_rows)
            ids, block = self._load(group, members, chunk_rows)
            want = order[offset : offset + len(ids)]
            offset += len(ids)
            block = block[np.searchsorted(ids, want)]  # rows in the order they go out
            if held is not None and len(held_ids):
                block = (
                    sp.vstack([held, block], format="csr")
                    if sp.issparse(block)
                    else np.concatenate([held, block])
                )
                want = np.concatenate([held_ids, want])
            n_full = (len(want) // batch_size) * batch_size
            for start in range(0, n_full, batch_size):
                yield self._emit(want[start : start + batch_size], block, start)
            held_ids = want[n_full:]
            held = block[n_full:]
            block = None  # free this buffer before the next one is read
        if len(held_ids):
            yield self._emit(held_ids, held, 0)

    def panel_chunks(
        self, cols: np.ndarray, chunk_rows: int | None = None
    ) -> Iterator[np.ndarray]:
        """Yield float64 row blocks of columns ``cols`` only, in row order.

        A dense HDF5 dataset is read column-selectively (only the panel columns leave
        the disk); a CSR dataset is read by row chunks and the columns picked in
        memory.
        """
        cols = np.asarray(cols)
        order = np.argsort(cols, kind="stable")
        sorted_cols = cols[order]
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        dense = not hasattr(self.X, "format")
        if chunk_rows is None:
            chunk_rows = (
                max(CHUNK_ENTRIES // max(len(cols), 1), 1)
                if dense
                else self._chunk_rows(1)
            )
        for start in range(0, self.n_obs, chunk_rows):
            stop = min(start + chunk_rows, self.n_obs)
            if dense:
                block = np.asarray(self.X[start:stop, sorted_cols])[:, inverse]
            else:
                block = _block_to_numpy(self.X[start:stop])[:, cols].toarray()
            block = np.asarray(block, dtype=np.float64)
            if not np.isfinite(block).all():
                raise ValueError(
                    "Input X contains NaN or infinity in the panel columns (rows "
                    f"{start}-{stop - 1})."
                )
            yield block

    def _emit(
        self, ids: np.ndarray, block: Any, start: int
    ) -> tuple[np.ndarray, np.ndarray]:
        part = block[start : start + len(ids)]
        order = np.argsort(ids, kind="stable")
        part = part[order]
        if sp.issparse(part):
            part = part.toarray()
        return ids[order], np.asarray(part, dtype=np.float32)


def scan_columns(
    source: RowSource,
    idx: np.ndarray | None,
    with_stats: bool = True,
    chunk_rows: int | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """One streaming pass: check every value is finite, and column mean / std.

    The statistics (float64, over rows ``idx`` or all rows) are accumulated chunk by
    chunk, so neither a dense matrix nor a copy of the selected rows is built; constant
    columns get a standard deviation of 1. In-memory and backed sources of the same
    data give identical results.

    Raises
    ------
    ValueError
        If the matrix holds NaN or infinity.
    """
    n_vars = source.n_vars
    mean = np.zeros(n_vars)
    m2 = np.zeros(n_vars)  # sum of squared deviations (Chan et al. merging)
    count = 0
    sel = None if idx is None else np.zeros(source.n_obs, dtype=bool)
    if sel is not None:
        sel[idx] = True
    for start, block in source.chunks(chunk_rows):
        values = block.data if sp.issparse(block) else np.asarray(block)
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise ValueError(
                "Input X contains NaN or infinity (found in rows "
                f"{start}-{start + block.shape[0] - 1})."
            )
        check_float32_range(values, f" (rows {start}-{start + block.shape[0] - 1})")
        if not with_stats:
            continue
        if sel is not None:
            keep = sel[start : start + block.shape[0]]
            if not keep.all():
                block = block[np.flatnonzero(keep)]
        n_c = block.shape[0]
        if n_c == 0:
            continue
        if sp.issparse(block):
            block = block.astype(np.float64)
            mean_c = np.asarray(block.sum(axis=0)).ravel() / n_c
            sq = np.asarray(block.multiply(block).sum(axis=0)).ravel()
            m2_c = np.maximum(sq - n_c * mean_c**2, 0.0)
        else:
            block = np.asarray(block, dtype=np.float64)
            mean_c = block.mean(axis=0)
            m2_c = ((block - mean_c) ** 2).sum(axis=0)
        total = count + n_c
        delta = mean_c - mean
        mean = mean + delta * (n_c / total)
        m2 = m2 + m2_c + delta**2 * (count * n_c / total)
        count = total
    if not with_stats:
        return None, None
    std = np.sqrt(m2 / max(count, 1))
    std[~(std > 1e-12)] = 1.0
    return mean, std
