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
    # YOTOSelector's panel-design parameters
    "design_params": """\
required_genes : list of str or int, default=None
    Genes that must be in the panel (names, with DataFrame / AnnData input, or
    column indices), e.g. an existing panel to extend. ``k`` counts them: the
    network learns the other ``k - len(required_genes)`` genes to complement
    them, and predicts from all ``k``.
excluded_genes : list of str or int, default=None
    Genes that are never selected (e.g. mitochondrial or ribosomal genes, genes
    without a designable probe).
expression_window : tuple (low, high), default=None
    Keep genes whose mean expression over the training cells (of ``X`` as
    given, e.g. log-normalised) lies outside ``[low, high]`` out of the panel;
    ``None`` leaves a side open. For optical assays, where very highly expressed
    genes crowd the signal, an upper bound is the usual choice. Required genes
    outside the window stay in the panel (with a warning).
expression_budget : float, default=None
    Panel-level (optical crowding) budget: the panel's genes together may
    express at most this much per cell, as the sum over the panel of each
    gene's mean expression over all cells of ``X`` as given (the statistic of
    ``expression_window``; the mean is additive, so the bound is a property of
    the gene set and is guaranteed). The selection learns every gene's score as
    without a budget; the panel kept for refinement is the learned ranking
    trimmed to fit (the most expressed gene dropped, the best-ranked gene that
    fits added, until the panel fits), and the heads are refined on it, so
    ``panel_load_ <= expression_budget`` always. Required genes count against
    it; a budget no ``k``-gene panel can meet is an error before training.
gene_penalties : dict, Series or array-like of shape (n_features,), default=None
    A non-negative weight per gene (a mapping gene name or index -> weight,
    unlisted genes 0, or one weight per gene), e.g. from a probe-design table
    (fewer designable probes, more off-targets: a larger weight). The selection
    loss gains ``sum(mask * weight)``, so a gene with weight ``w`` must lower
    the training loss by about ``w`` to be chosen; it is never excluded. All
    zeros are the same as ``None`` (bit-identical panels).
binarize : bool or float, default=False
    Train and predict on detection, ``x > threshold`` (``True`` means a threshold
    of 0), instead of the expression values: the platform-robust input PERSIST
    uses for the shift from scRNA-seq to targeted assays (FISH, Xenium), whose
    counts are not on the scRNA-seq scale. The fitted model binarises the panel
    columns of ``X`` itself in :meth:`predict`, so it takes raw expression (or
    counts) from the new platform; :meth:`transform` returns the raw panel
    columns.
normalize_counts : bool or float, default=False
    ``X`` holds raw counts (the Census's ``raw`` layer, a backed h5ad of
    counts): train and predict on ``log1p`` of each cell scaled to sum to
    10,000 (a float sets that target sum), as ``scanpy.pp.normalize_total`` +
    ``log1p``, computed chunk by chunk (sparse stays sparse, nothing you passed
    is changed). The library size is the sum over all input genes of the cell;
    the fitted model applies the same transform in :meth:`predict`, and the
    expression window, budget and statistics refer to the normalised values.
    :meth:`transform` returns the raw panel columns. Not with ``binarize``. See
    :mod:`yoto_sklearn.counts`.
structure_components : int, default=0
    Also train the panel to predict the top ``structure_components``
    principal components of the training cells' expression (all genes,
    centred, not scaled; a streamed randomized SVD that never densifies), as
    auxiliary regression heads: a panel chosen for the labels alone can miss
    the rest of the data's structure (states, gradients, unseen types), which
    spapros's variation-recovery metrics (kNN overlap, cluster similarity)
    measure. The auxiliary heads shape training only; ``predict`` and the
    fitted ``tasks_`` are the labels' tasks. 0 (default) leaves them out;
    ``benchmarks/TUNING.md`` has the measured gains and costs.
structure_weight : float, default=1.0
    Total loss weight of the structure heads, split over the components in
    proportion to the variance each explains (each label task weighs 1).
marker_coverage : float, default=0.0
    Weight of a selection term that asks every class of ``marker_task`` for a
    gene separating it from the other classes on its own (a marker, as tree
    classifiers and panel designers read a panel): before training, each
    gene's one-vs-rest AUROC per class is computed on the training cells (at
    most 10,000, exact ranks, see :mod:`yoto_sklearn._markers`; 6 s for 10,000
    cells x 20,000 genes, 5 % non-zero, on one core, and fit times otherwise
    unchanged); at every
    selection step the genes that would most improve a class's best marker in
    the sampled panel are pulled towards it. The network is still what picks
    the panel; 0 (default) leaves the term out. ``benchmarks/TUNING.md`` has
    the measured gains and costs.
marker_task : str, int or None, default=None
    The classification task whose classes need markers (its name or
    position); None: the first classification task (put the cell-type task
    first).""",
    "X_predict": """\
X : {array-like, sparse matrix, AnnData, RowSource} of shape (n_samples, n_features)
    Same genes, in the same order, as in :meth:`fit`.""",
    # YOTOSelector's compute parameters
    "compute_params": """\
n_threads : int, "auto" or None, default="auto"
    Torch intra-op CPU threads inside :meth:`fit` and prediction (restored
    afterwards). ``"auto"``: one thread when the first layer is small (input
    columns x first hidden width below 4 million weights, ~15,000 genes at
    the default width; always for prediction), torch's setting otherwise.
    Small fits gain nothing from more threads and slow down when another
    program competes; larger ones gain when idle (1.27x with 2 cores) and
    lose when busy (1.85x slower): pass ``n_threads=1`` on a shared machine
    (``benchmarks/TUNING.md``). ``None``: torch's setting. CPU results depend
    on the thread count in the last bits; an int (or ``"auto"`` on a small
    network) gives bit-identical results in any process, joblib workers too.
n_jobs : int or None, default=None
    Workers of the linear passes over all cells (the column statistics and
    finiteness check of ``fit``, the panel columns for refinement and
    prediction): row ranges read and summarised by joblib under its active
    backend (``joblib.parallel_config``: processes by default, threads, or a
    Dask cluster). Each worker gets a copy of the row source and reads its
    own rows (a backed h5ad or SOMA experiment is reopened by path); results
    are merged in row order, so they equal the serial pass bit for bit.
    ``None`` or 1: serial. Worth it when reading dominates (a large file, a
    remote SOMA experiment) and cores are idle; in memory the copies usually
    cost more. The serial pass already reads ahead in a thread: on 2 cores,
    10^6 SOMA cells took 20.0 s serial, 19.1 s on 2 processes, 16.3 s on 2
    threads (``joblib.parallel_config(backend="threading")``).""",
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
