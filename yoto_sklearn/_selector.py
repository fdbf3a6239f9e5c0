"""The scikit-learn estimator: :class:`YOTOSelector`."""

from __future__ import annotations

import os
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectorMixin
from sklearn.metrics import accuracy_score
from sklearn.utils import ClassifierTags, check_random_state
from sklearn.utils._param_validation import StrOptions
from sklearn.utils._set_output import _get_output_config
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from . import _data
from ._data import CLASSIFICATION, REGRESSION, RowSource, TaskSpec
from ._network import RELAXATIONS, YOTONetwork, export_panel_network
from ._training import (
    History,
    TaskLoss,
    TrainConfig,
    check_finite_network,
    recover_from_interrupt,
    torch_threads,
    train,
)
from ._validation import (
    Number,
    check_batch_size,
    check_expression_window,
    check_float32_range,
    check_hidden_layer_sizes,
    check_unique_names,
    check_X_content,
    resolve_genes,
)
from .metrics import scaled_r2

_ACCEPT_SPARSE = ("csr", "csc")
_FLOAT_DTYPES = (np.float64, np.float32)
_PREDICT_CHUNK = 65536


def resolve_device(device: Any) -> torch.device:
    """Turn the ``device`` parameter into a usable :class:`torch.device`.

    Raises
    ------
    ValueError
        If the name is not a torch device, or names an accelerator that is absent.
    """
    if isinstance(device, torch.device):
        dev = device
    elif device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(
                f"Unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'."
            ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on this "
                "machine; use device='cpu' or 'auto'."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) "
                "are visible."
            )
    elif dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError(
                f"device={device!r} was requested but MPS is not available."
            )
    elif dev.type != "cpu":
        raise ValueError(
            f"Unsupported device {device!r}; use 'auto', 'cpu', 'cuda' or 'mps'."
        )
    return dev


def _derive_seed(random_state: Any) -> int:
    """An int seed from ``random_state`` without touching numpy's global RNG."""
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _stratified_split(
    rng: np.random.Generator, groups: np.ndarray, fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-group random split; groups of one member stay in the training part."""
    val: list[np.ndarray] = []
    train: list[np.ndarray] = []
    for g in np.unique(groups):
        members = rng.permutation(np.flatnonzero(groups == g))
        n_val = int(round(fraction * len(members))) if len(members) > 1 else 0
        val.append(members[:n_val])
        train.append(members[n_val:])
    val_idx = np.sort(np.concatenate(val))
    train_idx = np.sort(np.concatenate(train))
    if len(val_idx) == 0 and len(train_idx) > 2:
        val_idx, train_idx = train_idx[-1:], train_idx[:-1]
    return train_idx, val_idx


class YOTOSelector(SelectorMixin, BaseEstimator):
    """Select exactly ``k`` genes and predict several tasks from them, trained once.

    YOTO ("You Only Train Once") learns one score per gene. During training every
    mini-batch draws a Gumbel-perturbed hard top-``k`` panel; a relaxed top-``k`` with
    an annealed temperature carries gradients to the scores (straight-through), so the
    prediction loss decides which genes are selected. One shared encoder feeds one
    head per task (classification or regression); cells may lack labels for some
    tasks. At inference the panel is the deterministic top-``k`` of the scores, and
    only those ``k`` columns of ``X`` are used.

    Parameters
    ----------
    k : int, default=50
        Panel size. If larger than the number of features, all features are kept
        (with a warning), as :class:`~sklearn.feature_selection.SelectKBest` does.
    temperature : float, default=0.1
        Final temperature of the relaxed top-k (``> 0``). Lower values make the
        relaxation closer to the hard top-k at the end of the selection phase.
    temperature_start : float, default=10.0
        Temperature at the start of training, annealed exponentially to
        ``temperature`` over the selection phase. A hot start lets every gene's
        score receive gradient early on.
    hidden_layer_sizes : tuple of int, default=(256,)
        Widths of the encoder layers; the first layer sees only the panel genes.
    dropout : float, default=0.2
        Dropout probability after each hidden layer, in ``[0, 1)``.
    batch_norm : bool, default=True
        Use BatchNorm after each hidden linear layer.
    learning_rate : float, default=1e-3
        AdamW learning rate of the encoder and heads.
    score_learning_rate : float, default=0.01
        AdamW learning rate of the gene scores, ten times ``learning_rate``: with one
        shared rate the scores barely move against the Gumbel noise and the panel
        stays close to random.
    weight_decay : float, default=1e-4
        AdamW weight decay of the encoder and heads (not of the scores).
    max_iter : int, default=100
        Number of epochs. The first 60 % select the panel; the rest refine the
        network on the frozen panel (and may stop early).
    max_cells_per_epoch : int or None, default=16384
        Cells visited per epoch. With more training cells than this, an epoch is
        the next ``max_cells_per_epoch`` cells of a shuffled pass over the data, so
        the training schedule (annealing, early stopping, ``max_iter``) and its cost
        stop growing with the number of cells: a million cells do not need a
        hundred passes to rank genes. Datasets up to this size train exactly as
        without a cap (every epoch is a full pass); ``None`` always makes full
        passes. The early-stopping validation set is then a fixed random subset of
        ``max_cells_per_epoch // 4`` held-out cells.
    batch_size : int, default=128
        Mini-batch size (capped at the number of training cells).
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the cells (stratified on the task with
        most classes), stop the refinement phase when the validation loss has not
        improved by ``tol`` for ``n_iter_no_change`` epochs, and restore the best
        weights.
    validation_fraction : float, default=0.1
        Fraction of cells held out for early stopping, in ``(0, 1)``.
    n_iter_no_change : int, default=10
        Patience of early stopping, in epochs.
    tol : float, default=1e-4
        Minimum decrease of the validation loss that counts as an improvement.
    task_types : None, str, list or dict, default=None
        Type of each task, ``"classification"`` or ``"regression"``. ``None`` (or
        ``"auto"``) detects it per column with the rule every door shares
        (``yoto_sklearn._data.detect_task_type``): text, categories, booleans and
        whole numbers with at most 100 distinct values are classification; other
        numbers are regression (with a warning when they are whole numbers). A
        str applies to all tasks, a list gives one entry per column, a dict maps
        task names.
    task_weights : None, list or dict, default=None
        Weight of each task's loss (default 1 for every task).
    class_weight : {"sqrt", "balanced"} or None, default="sqrt"
        Weight of each class in a classification task's loss, from its count
        ``n_c`` among the ``n`` labelled training cells of the task (``C``
        classes present). ``"balanced"`` is ``n / (C n_c)``, as in scikit-learn:
        it targets balanced accuracy, and with a class of a dozen cells next to
        one of hundreds it makes the network predict the rare class far more
        often than it occurs, which costs precision and macro-F1. ``"sqrt"``
        (default) is the square root of the balanced weight, the usual
        compromise for long-tailed labels: rare classes still count more than
        their frequency, by at most the square root of the imbalance. None
        weights every cell equally. Measured on the benchmark datasets (5 seeds,
        k = 10/25/50): ``"sqrt"`` over ``"balanced"`` +0.011 in the heads' test
        score on average over all tasks (+0.016 macro-F1 on Zeisel's cell types
        and pbmc68k's ``bulk_labels`` and ``phase``), see ``benchmarks/TUNING.md``.
    standardize : bool, default=True
        Standardise each gene (mean and standard deviation computed on the training
        data, without densifying sparse input). Folded into the first layer after
        fitting, so prediction takes raw ``X``.
    relaxation : {"sigmoid", "softmax"}, default="sigmoid"
        Relaxed top-k that carries gradients to the scores. ``"sigmoid"`` is
        ``sigmoid((s - t) / tau)`` with the threshold ``t`` between the k-th and
        (k+1)-th perturbed scores and its implicit gradient; its cost does not
        depend on ``k``. ``"softmax"`` is the successive softmax of Xie & Ermon
        (2019), ``k`` softmaxes per step.
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
    binarize : bool or float, default=False
        Train and predict on detection, ``x > threshold`` (``True`` means a threshold
        of 0), instead of the expression values: the platform-robust input PERSIST
        uses for the shift from scRNA-seq to targeted assays (FISH, Xenium), whose
        counts are not on the scRNA-seq scale. The fitted model binarises the panel
        columns of ``X`` itself in :meth:`predict`, so it takes raw expression (or
        counts) from the new platform; :meth:`transform` returns the raw panel
        columns.
    device : str or torch.device, default="auto"
        Where to train: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``,
        ``"cuda"``, ``"cuda:N"``. Resolved in :meth:`fit`. The fitted model always
        lives on the CPU, so pickles load anywhere.
    n_threads : int or None, default=None
        Number of torch intra-op CPU threads used inside :meth:`fit` and
        prediction (the previous setting is restored afterwards). ``None`` keeps
        torch's current setting. CPU results depend on the thread count in the last
        bits, and joblib workers (``GridSearchCV(n_jobs=2)``) run with fewer threads
        than the main process: set an int to get bit-identical models and
        predictions whatever the process.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, Gumbel noise, dropout, shuffling and the
        validation split. Fitting never changes numpy's or torch's global RNG state.
    verbose : int, default=0
        ``> 0`` shows a progress bar with the training and validation loss.

    Attributes
    ----------
    scores_ : ndarray of shape (n_features,)
        Learned gene scores; the panel is their top ``k_`` (stable tie-break).
    support_ : ndarray of shape (k,)
        Indices of the panel genes, best first.
    ranking_ : ndarray of shape (n_features,)
        Rank of every gene, 1 for the best: the panel genes (required genes first)
        take ranks 1 to ``k_``, then the other selectable genes by score, then the
        excluded ones.
    required_ : ndarray of int
        Indices of the required genes (empty without ``required_genes``).
    excluded_ : ndarray of int
        Indices of the genes that could not be selected: ``excluded_genes`` and the
        genes outside ``expression_window`` (required genes are never in it).
    k_ : int
        Effective panel size, ``min(k, n_features_in_)``.
    n_features_in_ : int
        Number of features seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_features,)
        Feature names seen during fit (DataFrame columns or AnnData ``var_names``);
        only defined when they are strings.
    task_names_ : list of str
        One name per task (DataFrame / Series names, else ``"task0"``, ...).
    task_types_ : list of str
        ``"classification"`` or ``"regression"`` per task.
    classes_ : ndarray or list
        For one classification task, its class labels. For several tasks, a list
        with the class labels of each task (``None`` for regression tasks). ``None``
        for a single regression task.
    loss_curve_ : list of float
        Mean training loss of each epoch.
    validation_loss_curve_ : list of float or None
        Validation loss of each epoch (``None`` without early stopping).
    validation_scores_ : list of float or None
        Mean validation task score (accuracy / R^2) of each epoch.
    best_validation_score_ : float or None
        Validation score of the restored weights.
    n_iter_ : int
        Number of epochs run.
    device_ : str
        The device training ran on.
    history_ : History
        Per-epoch record of the run (curves, temperatures, ``best_epoch``,
        ``selection_epochs``, ``stopped_early``, ``interrupted``).
    module_ : torch.nn.Module
        The fitted panel network (float64, CPU) mapping the ``k_`` panel genes to
        every task's output; standardisation and BatchNorm are folded in.

    Notes
    -----
    **AnnData.** ``fit``, ``predict``, ``predict_proba``, ``transform``, ``score`` and
    ``score_tasks`` accept an AnnData as ``X`` (``adata.X`` is used, gene names come
    from ``var_names``; a backed AnnData is streamed). ``fit`` and ``score`` also
    accept obs column names as ``y``. In a ``Pipeline`` or ``GridSearchCV``, pass the
    targets as arrays (``adata.obs["cell_type"].to_numpy()``): scikit-learn splits
    ``y``, not ``adata.obs``, so obs names only work in direct calls. For layers,
    ``adata.raw`` and results written back into ``adata.var`` / ``adata.uns``, use
    :func:`yoto_sklearn.anndata.select_genes`.

    See Also
    --------
    sklearn.feature_selection.SelectKBest : Univariate top-k selection.

    Examples
    --------
    >>> import numpy as np
    >>> from yoto_sklearn import YOTOSelector
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 30))
    >>> y = (X[:, 0] + X[:, 1] > 0).astype(int)
    >>> sel = YOTOSelector(k=5, max_iter=20, random_state=0).fit(X, y)
    >>> sel.transform(X).shape
    (200, 5)
    >>> sel.predict(X).shape
    (200,)
    """

    _parameter_constraints: dict = {
        "k": [Number(Integral, 1, None, closed="left")],
        "temperature": [Number(Real, 0, None, closed="neither")],
        "temperature_start": [Number(Real, 0, None, closed="neither")],
        "hidden_layer_sizes": [
            "array-like",
            Number(Integral, 1, None, closed="left"),
        ],
        "dropout": [Number(Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
        "learning_rate": [Number(Real, 0, None, closed="neither")],
        "score_learning_rate": [Number(Real, 0, None, closed="neither")],
        "weight_decay": [Number(Real, 0, None, closed="left")],
        "max_iter": [Number(Integral, 1, None, closed="left")],
        "max_cells_per_epoch": [None, Number(Integral, 2, None, closed="left")],
        "batch_size": [Number(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Number(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Number(Integral, 1, None, closed="left")],
        "tol": [Number(Real, 0, None, closed="left")],
        "task_types": [None, str, list, tuple, dict],
        "task_weights": [None, "array-like", dict],
        "class_weight": [StrOptions({"balanced", "sqrt"}), None],
        "standardize": ["boolean"],
        "relaxation": [StrOptions(set(RELAXATIONS))],
        "required_genes": [None, "array-like"],
        "excluded_genes": [None, "array-like"],
        "expression_window": [None, tuple, list],
        "binarize": ["boolean", Number(Real, 0, None, closed="left")],
        "device": [str, torch.device],
        "n_threads": [None, Number(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # What early stopping watches (see TrainConfig.stop_on).
    _stop_on = "loss"
    # issue 9 study switch: (selection, refinement) class weighting, each
    # "balanced", "sqrt" or "none"; None uses class_weight for both phases
    _cw_phases: tuple[str, str] | None = None

    def __init__(
        self,
        k: int = 50,
        *,
        temperature: float = 0.1,
        temperature_start: float = 10.0,
        hidden_layer_sizes: tuple[int, ...] = (256,),
        dropout: float = 0.2,
        batch_norm: bool = True,
        learning_rate: float = 1e-3,
        score_learning_rate: float = 0.01,
        weight_decay: float = 1e-4,
        max_iter: int = 100,
        max_cells_per_epoch: int | None = 16384,
        batch_size: int = 128,
        early_stopping: bool = True,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
        task_types: Any = None,
        task_weights: Any = None,
        class_weight: str | None = "sqrt",
        standardize: bool = True,
        relaxation: str = "sigmoid",
        required_genes: Any = None,
        excluded_genes: Any = None,
        expression_window: Any = None,
        binarize: bool | float = False,
        device: str | torch.device = "auto",
        n_threads: int | None = None,
        random_state: Any = None,
        verbose: int = 0,
    ) -> None:
        self.k = k
        self.temperature = temperature
        self.temperature_start = temperature_start
        self.hidden_layer_sizes = hidden_layer_sizes
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.learning_rate = learning_rate
        self.score_learning_rate = score_learning_rate
        self.weight_decay = weight_decay
        self.max_iter = max_iter
        self.max_cells_per_epoch = max_cells_per_epoch
        self.batch_size = batch_size
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.task_types = task_types
        self.task_weights = task_weights
        self.class_weight = class_weight
        self.standardize = standardize
        self.relaxation = relaxation
        self.required_genes = required_genes
        self.excluded_genes = excluded_genes
        self.expression_window = expression_window
        self.binarize = binarize
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        tags.input_tags.sparse = True
        # predict_proba exists, so describe its classification side too.
        tags.classifier_tags = ClassifierTags(multi_class=True, poor_score=True)
        return tags

    # ------------------------------------------------------------------ fitting
    def _hidden_sizes(self) -> list[int]:
        return check_hidden_layer_sizes(self.hidden_layer_sizes, type(self).__name__)

    def _task_weights(self, names: list[str]) -> list[float]:
        tw = self.task_weights
        if tw is None:
            return [1.0] * len(names)
        if isinstance(tw, dict):
            unknown = set(map(str, tw)) - set(names)
            if unknown:
                raise ValueError(
                    f"task_weights names unknown tasks {sorted(unknown)}; tasks are "
                    f"{names}."
                )
            weights = [float(tw.get(n, 1.0)) for n in names]
        else:
            weights = [float(w) for w in np.asarray(tw, dtype=np.float64).ravel()]
            if len(weights) != len(names):
                raise ValueError(
                    f"task_weights has {len(weights)} entries but y has {len(names)} "
                    "task column(s)."
                )
        if not all(np.isfinite(w) and w >= 0 for w in weights) or sum(weights) == 0:
            raise ValueError(
                "task_weights must be finite, non-negative and not all zero, got "
                f"{weights}."
            )
        return weights

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None) -> YOTOSelector:
        """Train the network and select the panel.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_samples, n_features)
            Expression matrix, cells by genes (log-normalised expression works well).
            Sparse CSR/CSC input is never densified as a whole. For AnnData,
            ``adata.X`` is used and gene names come from ``var_names``.
        y : array-like of shape (n_samples,) or (n_samples, n_tasks), str or list
            One column per task. NaN / None / ``pd.NA`` marks a missing label. With
            AnnData ``X``, column name(s) of ``adata.obs`` may be given instead.

        Returns
        -------
        self : YOTOSelector
            The fitted selector.

        Raises
        ------
        ValueError, TypeError
            For bad input, with a message naming the problem (the full table is in
            ``docs/reliability.md``).
        FloatingPointError
            If the loss or the weights become non-finite before any best weights
            were recorded.

        Notes
        -----
        If ``fit`` raises, or is interrupted (``KeyboardInterrupt``) before the panel
        selection finished, the estimator is left unfitted (also when it had been
        fitted before). An interrupt after the selection phase returns a usable
        model with the best weights so far and a ``ConvergenceWarning``;
        ``history_.interrupted`` is then True.
        """
        try:
            with torch_threads(self.n_threads):
                return self._fit(X, y)
        except BaseException:
            # Never leave a half-fitted estimator behind (an error or Ctrl-C after
            # validate_data set n_features_in_, or during a refit): back to unfitted.
            self._clear_fitted()
            raise

    def _clear_fitted(self) -> None:
        """Remove every fitted attribute (names ending in ``_``)."""
        fitted = [a for a in vars(self) if a.endswith("_") and not a.startswith("_")]
        for name in fitted:
            delattr(self, name)

    def _fit(self, X: Any, y: Any) -> YOTOSelector:
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is "
                "None."
            )
        X, gene_names, y = _data.unwrap_anndata(X, y)
        hidden = self._hidden_sizes()
        check_batch_size(self.batch_size, self.batch_norm, type(self).__name__)
        device = resolve_device(self.device)
        if gene_names is not None:
            check_unique_names(gene_names, "AnnData var_names")
        backed = _data.is_backed_matrix(X)
        if backed:
            # Out of core: validated (finiteness) while streaming, below.
            source = _data.BackedRowSource(X)
            self._reset_backed_features(source)
        else:
            check_X_content(X)
            X = validate_data(
                self,
                X,
                accept_sparse=_ACCEPT_SPARSE,
                dtype=_FLOAT_DTYPES,
                ensure_min_samples=2,
                ensure_all_finite=True,
            )
            check_float32_range(X)
            source = RowSource(X)
        if gene_names is not None:
            self._set_anndata_names(gene_names)
        n_samples, n_features = source.n_obs, source.n_vars
        tasks, Y = _data.encode_targets(y, n_samples, self.task_types)
        names = [t.name for t in tasks]
        task_weights = self._task_weights(names)

        genes = getattr(self, "feature_names_in_", None)
        required = resolve_genes(
            self.required_genes, "required_genes", n_features, genes
        )
        excluded = resolve_genes(
            self.excluded_genes, "excluded_genes", n_features, genes
        )
        both = np.intersect1d(required, excluded)
        if len(both):
            shown = [genes[i] if genes is not None else int(i) for i in both[:5]]
            raise ValueError(f"Genes {shown} are both required and excluded.")
        window = check_expression_window(self.expression_window)
        if len(required) > self.k:
            raise ValueError(
                f"required_genes lists {len(required)} genes, more than k={self.k}."
            )

        k = int(self.k)
        if k > n_features:
            warnings.warn(
                f"k={k} is greater than n_features={n_features}. All the features "
                "will be selected.",
                UserWarning,
                stacklevel=4,
            )
            k = n_features

        seed = _derive_seed(self.random_state)
        rng = np.random.default_rng(seed)
        all_idx = np.arange(n_samples)
        val_idx = None
        train_idx = all_idx
        if self.early_stopping:
            train_idx, val_idx = _stratified_split(
                rng, self._strata(tasks, Y), self.validation_fraction
            )
        if len(train_idx) < 2:
            raise ValueError(
                f"Only {len(train_idx)} training sample(s) left after holding out the "
                "validation part; need at least 2 (use more samples or "
                "early_stopping=False)."
            )

        mean = scale = None
        stats_idx = train_idx if val_idx is not None else None
        if self.standardize or backed or window is not None:
            # One streaming pass: finiteness (backed) and column statistics.
            mean, scale = _data.scan_columns(
                source, stats_idx, self.standardize or window is not None
            )
        if window is not None:
            outside = np.flatnonzero((mean < window[0]) | (mean > window[1]))
            kept = np.intersect1d(outside, required)
            if len(kept):
                shown = [genes[i] if genes is not None else int(i) for i in kept[:5]]
                warnings.warn(
                    f"{len(kept)} required gene(s) lie outside expression_window "
                    f"and stay in the panel: {shown}",
                    UserWarning,
                    stacklevel=4,
                )
            excluded = np.union1d(excluded, np.setdiff1d(outside, required))
        n_selectable = n_features - len(excluded)
        if k > n_selectable:
            raise ValueError(
                f"k={k} but only {n_selectable} genes can be selected ("
                f"{len(excluded)} of {n_features} are excluded by excluded_genes / "
                "expression_window)."
            )
        threshold = self._binarize_threshold()
        if threshold is not None:
            source = _data.BinarizedSource(source, threshold)
            if self.standardize:  # statistics of what the network sees
                mean, scale = _data.scan_columns(source, stats_idx, True)
        if self.standardize:
            mean, scale = mean.astype(np.float32), scale.astype(np.float32)
        else:
            mean = scale = None
        phases = self._cw_phases or (
            (self.class_weight or "none"),
            (self.class_weight or "none"),
        )
        losses = self._task_losses(tasks, Y, train_idx, task_weights, device, phases[0])
        refine_losses = (
            losses
            if phases[1] == phases[0]
            else self._task_losses(tasks, Y, train_idx, task_weights, device, phases[1])
        )
        config = TrainConfig(
            max_iter=int(self.max_iter),
            batch_size=int(self.batch_size),
            learning_rate=float(self.learning_rate),
            score_learning_rate=float(self.score_learning_rate),
            weight_decay=float(self.weight_decay),
            temperature_start=float(self.temperature_start),
            temperature=float(self.temperature),
            early_stopping=bool(self.early_stopping),
            n_iter_no_change=int(self.n_iter_no_change),
            tol=float(self.tol),
            verbose=int(self.verbose),
            stop_on=self._stop_on,
            max_cells_per_epoch=(
                None
                if self.max_cells_per_epoch is None
                else int(self.max_cells_per_epoch)
            ),
        )
        fork_devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=fork_devices):
            torch.random.default_generator.manual_seed(seed)
            if device.type == "cuda":
                torch.cuda.manual_seed(seed)
            net = YOTONetwork(
                n_features,
                k,
                hidden,
                [t.n_outputs for t in tasks],
                dropout=float(self.dropout),
                batch_norm=bool(self.batch_norm),
                relaxation=self.relaxation,
                required=required.tolist(),
                excluded=excluded.tolist(),
            )
            generator = torch.Generator(device=device)
            generator.manual_seed(seed + 1)
            history = History()
            try:
                train(
                    net,
                    source,
                    Y,
                    losses,
                    train_idx,
                    val_idx,
                    mean,
                    scale,
                    config,
                    rng,
                    generator,
                    device,
                    history=history,
                    refine_losses=refine_losses,
                )
            except KeyboardInterrupt:
                if not recover_from_interrupt(net, history):
                    raise
                warnings.warn(
                    f"fit was interrupted (KeyboardInterrupt) at epoch "
                    f"{history.n_iter} of {self.max_iter}, after the panel selection "
                    "had finished: the fitted model uses the selected panel and the "
                    "best network weights so far.",
                    ConvergenceWarning,
                    stacklevel=4,
                )
            check_finite_network(net)
            # _linear_from uses skip_init, so exporting draws no random numbers;
            # staying inside fork_rng keeps it that way for any future layer type.
            self._set_fitted(net.cpu(), tasks, k, mean, scale, history, device)
            self.required_ = required
            self.excluded_ = np.sort(excluded)
        return self

    def _binarize_threshold(self) -> float | None:
        """The detection threshold of ``binarize``, or None when it is off."""
        if isinstance(self.binarize, bool | np.bool_):
            return 0.0 if self.binarize else None
        return float(self.binarize)

    def _reset_backed_features(self, source: _data.BackedRowSource) -> None:
        """What ``validate_data(reset=True)`` does, for a matrix left on disk."""
        if source.n_obs < 2:
            raise ValueError(
                f"Found array with {source.n_obs} sample(s) (shape="
                f"({source.n_obs}, {source.n_vars})) while a minimum of 2 is "
                "required."
            )
        if source.n_vars < 1:
            raise ValueError(
                "Found array with 0 feature(s); a minimum of 1 is required."
            )
        self.n_features_in_ = source.n_vars
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    def _set_anndata_names(self, gene_names: np.ndarray) -> None:
        if all(isinstance(g, str) for g in gene_names):
            self.feature_names_in_ = np.asarray(gene_names, dtype=object)

    @staticmethod
    def _strata(tasks: list[TaskSpec], Y: np.ndarray) -> np.ndarray:
        """Stratify the validation split on the task with the most classes."""
        cls = [j for j, t in enumerate(tasks) if t.kind == CLASSIFICATION]
        if not cls:
            return np.zeros(len(Y), dtype=np.int64)
        j = max(cls, key=lambda i: len(tasks[i].classes))
        col = Y[:, j]
        return np.where(np.isnan(col), -1, col).astype(np.int64)

    def _task_losses(
        self,
        tasks: list[TaskSpec],
        Y: np.ndarray,
        train_idx: np.ndarray,
        weights: list[float],
        device: torch.device,
        scheme: str = "balanced",
    ) -> list[TaskLoss]:
        out = []
        for j, (task, w) in enumerate(zip(tasks, weights, strict=True)):
            cw = None
            if task.kind == CLASSIFICATION and scheme in ("balanced", "sqrt"):
                col = Y[train_idx, j]
                codes = col[~np.isnan(col)].astype(np.int64)
                counts = np.bincount(codes, minlength=len(task.classes)).astype(float)
                n_present = max(int((counts > 0).sum()), 1)
                balanced = len(codes) / (n_present * np.maximum(counts, 1.0))
                if scheme == "sqrt":
                    balanced = np.sqrt(balanced)
                cw = torch.as_tensor(balanced, dtype=torch.float32, device=device)
            out.append(TaskLoss(task.kind, w, cw))
        return out

    def _set_fitted(
        self,
        net: YOTONetwork,
        tasks: list[TaskSpec],
        k: int,
        mean: np.ndarray | None,
        scale: np.ndarray | None,
        history: History,
        device: torch.device,
    ) -> None:
        scores = net.scores.detach().cpu().double().numpy().copy()
        # stable score order, with required genes first and excluded genes last
        order = net.ranking().cpu().numpy()
        support = order[:k]
        ranking = np.empty(len(scores), dtype=np.int64)
        ranking[order] = np.arange(1, len(scores) + 1)
        self.module_ = export_panel_network(
            net,
            torch.as_tensor(support),
            None if mean is None else torch.as_tensor(mean),
            None if scale is None else torch.as_tensor(scale),
        )
        self.scores_ = scores
        self.support_ = support
        self.ranking_ = ranking
        self.k_ = k
        self.tasks_ = tasks
        self.task_names_ = [t.name for t in tasks]
        self.task_types_ = [t.kind for t in tasks]
        if len(tasks) == 1:
            self.classes_ = tasks[0].classes
        else:
            self.classes_ = [t.classes for t in tasks]
        self.loss_curve_ = list(history.loss_curve)
        has_val = bool(history.validation_loss_curve)
        self.validation_loss_curve_ = (
            list(history.validation_loss_curve) if has_val else None
        )
        self.validation_scores_ = list(history.validation_scores) if has_val else None
        if has_val:
            best = history.best_epoch or history.n_iter
            self.best_validation_score_ = history.validation_scores[best - 1]
        else:
            self.best_validation_score_ = None
        self.n_iter_ = history.n_iter
        self.device_ = str(device)
        self.history_ = history

    def transform(self, X: Any) -> Any:
        """Keep only the panel columns of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_samples, n_features)
            Same genes, in the same order, as in :meth:`fit`.

        Returns
        -------
        X_panel : {ndarray, sparse matrix, DataFrame} of shape (n_samples, k)
            The panel columns in their original order. Containers are kept (sparse
            stays sparse, ``set_output(transform="pandas")`` gives a DataFrame); for
            AnnData input the panel columns of ``adata.X`` are returned as a matrix,
            so that the next step of a ``Pipeline`` can use them (a dense array
            for a backed AnnData, read in row chunks, panel columns only); with
            ``set_output(transform="pandas")`` a DataFrame indexed by ``obs_names``.
        """
        if _data.is_anndata(X):
            matrix = self._check_X_predict(X)
            cols = self.get_support(indices=True)
            if isinstance(matrix, _data.BackedRowSource):
                # backed AnnData: row chunks of the panel columns, read from disk
                panel = np.concatenate(list(matrix.panel_chunks(cols)), axis=0)
            else:
                panel = matrix[:, cols]
            if _get_output_config("transform", self)["dense"] == "pandas" and not (
                sp.issparse(panel)
            ):
                # keep the cell names: the output wrapper only knows DataFrame input
                return pd.DataFrame(
                    panel,
                    index=pd.Index(X.obs_names),
                    columns=self.get_feature_names_out(),
                )
            return panel
        return super().transform(X)

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self)
        mask = np.zeros(self.n_features_in_, dtype=bool)
        mask[self.support_] = True
        return mask

    # --------------------------------------------------------------- prediction
    def _check_X_predict(self, X: Any) -> Any:
        """Validate X at predict time (AnnData aware); return the matrix."""
        check_is_fitted(self)
        if _data.is_anndata(X):
            names = np.asarray(X.var_names, dtype=object)
            matrix = X.X
            fitted = getattr(self, "feature_names_in_", None)
            if fitted is not None and (
                len(names) != len(fitted) or np.any(names != fitted)
            ):
                raise ValueError(
                    "The AnnData var_names differ from the feature names seen during "
                    "fit (same genes in the same order are required)."
                )
            default = np.arange(len(names)).astype(str)
            if fitted is None and not np.array_equal(names.astype(str), default):
                warnings.warn(
                    f"X is an AnnData with var_names, but {type(self).__name__} was "
                    "fitted without feature names: its genes are taken by column "
                    "position, and their names cannot be checked. Fit on an AnnData "
                    "or a DataFrame to have genes matched by name.",
                    UserWarning,
                    stacklevel=3,
                )
            if _data.is_backed_matrix(matrix):
                source = _data.BackedRowSource(matrix)
                if source.n_vars != self.n_features_in_:
                    raise ValueError(
                        f"X has {source.n_vars} features, but {type(self).__name__} "
                        f"is expecting {self.n_features_in_} features as input."
                    )
                return source
            matrix = check_array(
                matrix,
                accept_sparse=_ACCEPT_SPARSE,
                dtype=_FLOAT_DTYPES,
                ensure_all_finite=True,
            )
            if matrix.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {matrix.shape[1]} features, but {type(self).__name__} is "
                    f"expecting {self.n_features_in_} features as input."
                )
            return matrix
        check_X_content(X)
        return validate_data(
            self,
            X,
            accept_sparse=_ACCEPT_SPARSE,
            dtype=_FLOAT_DTYPES,
            ensure_all_finite=True,
            reset=False,
        )

    def _panel_outputs(self, X: Any) -> list[np.ndarray]:
        """Raw head outputs, computed from the panel columns only."""
        X = self._check_X_predict(X)
        if isinstance(X, _data.BackedRowSource):
            # Out of core: row chunks of the panel columns only.
            blocks = X.panel_chunks(self.support_)
        else:
            panel = X[:, self.support_]
            blocks = (
                panel[start : start + _PREDICT_CHUNK]
                for start in range(0, panel.shape[0], _PREDICT_CHUNK)
            )
        outs: list[list[np.ndarray]] = [[] for _ in self.tasks_]
        threshold = self._binarize_threshold()
        with torch.no_grad(), torch_threads(getattr(self, "n_threads", None)):
            for block in blocks:
                if sp.issparse(block):
                    block = block.toarray()
                block = np.asarray(block, dtype=np.float64)
                if threshold is not None:  # the model was trained on detection
                    block = (block > threshold).astype(np.float64)
                xb = torch.as_tensor(block)
                for t, out in enumerate(self.module_(xb)):
                    outs[t].append(out.numpy())
        return [np.concatenate(o, axis=0) for o in outs]

    @staticmethod
    def _softmax(logits: np.ndarray) -> np.ndarray:
        z = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def _task_predictions(self, X: Any) -> list[np.ndarray]:
        outputs = self._panel_outputs(X)
        preds = []
        for task, out in zip(self.tasks_, outputs, strict=True):
            if task.kind == CLASSIFICATION:
                preds.append(task.classes[np.argmax(out, axis=1)])
            else:
                preds.append(out[:, 0] * task.std + task.mean)
        return preds

    def predict(self, X: Any) -> np.ndarray:
        """Predict every task with the fitted heads, from the panel genes only.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_samples, n_features)
            Same genes, in the same order, as in :meth:`fit`.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_tasks)
            Class labels (classification) or values (regression). With several
            tasks, one column per task; the array is ``object`` when the tasks'
            types differ.
        """
        preds = self._task_predictions(X)
        if len(preds) == 1:
            return preds[0]
        dtypes = {p.dtype for p in preds}
        if len(dtypes) == 1 and next(iter(dtypes)).kind != "O":
            return np.column_stack(preds)
        out = np.empty((len(preds[0]), len(preds)), dtype=object)
        for j, p in enumerate(preds):
            out[:, j] = p
        return out

    def predict_proba(self, X: Any) -> np.ndarray | list[np.ndarray | None]:
        """Class probabilities of the classification task(s).

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_samples, n_features)
            Same genes, in the same order, as in :meth:`fit`.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes) or list
            For a single classification task, its probabilities (columns ordered as
            ``classes_``). For several tasks, a list with one array per task and
            ``None`` for regression tasks.
        """
        outs = self._panel_outputs(X)
        if not any(t.kind == CLASSIFICATION for t in self.tasks_):
            raise ValueError(
                "predict_proba needs a classification task; this model has only "
                "regression tasks."
            )
        probas = [
            self._softmax(o) if t.kind == CLASSIFICATION else None
            for t, o in zip(self.tasks_, outs, strict=True)
        ]
        return probas[0] if len(probas) == 1 else probas

    def score_tasks(self, X: Any, y: Any) -> dict[str, float]:
        """Per-task score on the observed labels: accuracy or R^2.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_samples, n_features)
            Test cells.
        y : array-like, str or list
            True targets in the layout used for :meth:`fit`; missing labels are
            ignored. A DataFrame's columns are matched to the tasks by name (in
            any order; other names are an error); arrays are matched by position.
            With AnnData ``X``, obs column name(s).

        Returns
        -------
        scores : dict
            Task name to score; NaN for a task without observed labels in ``y``.
        """
        check_is_fitted(self)
        if _data.is_anndata(X):
            y = _data.unwrap_anndata(X, y)[2]
        frame = _data.targets_frame(y, _num_samples(X))
        frame = _data.match_task_columns(y, frame, self.task_names_)
        preds = self._task_predictions(X)
        result = {}
        for j, (task, pred) in enumerate(zip(self.tasks_, preds, strict=True)):
            col = frame.iloc[:, j]
            obs = ~pd.isna(col).to_numpy()
            if not obs.any():
                result[task.name] = float("nan")
                continue
            true = col.to_numpy()[obs]
            if task.kind == CLASSIFICATION:
                result[task.name] = float(accuracy_score(_align(true, pred), pred[obs]))
            else:
                true = true.astype(np.float64)
                if obs.sum() < 2:
                    result[task.name] = float("nan")
                else:
                    result[task.name] = scaled_r2(true, pred[obs])
        return result

    def score(self, X: Any, y: Any) -> float:
        """Mean over tasks of accuracy (classification) or R^2 (regression).

        Missing labels are ignored; tasks without observed labels are skipped.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_samples, n_features)
            Test cells.
        y : array-like, str or list
            True targets; NaN / None mark missing labels.

        Returns
        -------
        score : float
            The mean task score.
        """
        values = [v for v in self.score_tasks(X, y).values() if np.isfinite(v)]
        return float(np.mean(values)) if values else float("nan")

    # ------------------------------------------------------------ model files
    def save(self, path: str | os.PathLike) -> None:
        """Save the fitted model to one safe, portable file.

        The file is a `safetensors` file: tensors plus JSON metadata (package,
        torch and scikit-learn versions, parameters, feature names, classes,
        fitted values) and a SHA-256 checksum. Reading it involves no unpickler, so
        loading never runs code. A ``random_state`` that is a ``RandomState``
        instance is not stored (it is listed in the metadata under
        ``params_not_saved``).

        Parameters
        ----------
        path : str or path-like
            Destination file (e.g. ``model.safetensors``); written atomically.
        """
        from ._io import save_model

        save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> YOTOSelector:
        """Load a model written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            A file written by :meth:`save`.

        Returns
        -------
        selector : YOTOSelector
            The fitted selector, on the CPU; it predicts bit-identically to the
            saved one.

        Raises
        ------
        ValueError
            If the file is truncated, corrupted or modified (checksum), is not a
            YOTO model file, uses an unsupported format version, was written by
            a newer major version of yoto-sklearn, or holds any value that does
            not describe a fitted selector (every field is validated: a forged
            file with a recomputed checksum is refused too).
        """
        from ._io import load_model

        return load_model(cls, path)


def _num_samples(X: Any) -> int:
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _align(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Cast true labels to the predictions' dtype when that is lossless."""
    if true.dtype == object and pred.dtype != object:
        try:
            cast = true.astype(pred.dtype)
            if np.all(cast == true):
                return cast
        except (TypeError, ValueError):
            pass
    return true


__all__ = ["YOTOSelector", "REGRESSION", "CLASSIFICATION"]
