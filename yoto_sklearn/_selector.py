"""The scikit-learn estimator :class:`YOTOSelector`; ``fit`` dispatches named steps.

See ``YOTOSelector._fit`` and docs/architecture.md for the steps and their modules.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from sklearn import get_config
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectorMixin
from sklearn.utils import ClassifierTags
from sklearn.utils.validation import validate_data

from . import sources
from ._design import PanelDesign, binarize_threshold, prepare_columns, resolve_design
from ._docs import shared
from ._fitted import FittedState
from ._io import ModelFileMixin
from ._markers import with_markers
from ._network import YOTONetwork
from ._predictor import ACCEPT_SPARSE, FLOAT_DTYPES, PanelPredictorMixin
from ._structure import with_structure
from ._targets import (
    TaskSpec,
    encode_targets,
    obs_columns,
    resolve_task_weights,
    strata,
)
from ._training import (
    History,
    TaskLoss,
    TrainConfig,
    TrainingData,
    auto_threads,
    check_finite_network,
    derive_seed,
    recover_from_interrupt,
    resolve_device,
    seeded_torch,
    stratified_split,
    task_losses,
    torch_threads,
    train,
)
from ._validation import (
    PARAMETER_CONSTRAINTS,
    check_batch_size,
    check_callbacks,
    check_float32_range,
    check_hidden_layer_sizes,
    check_min_shape,
    check_unique_names,
    check_X_content,
)
from .counts import check_counts_options, count_target_sum, normalized
from .sources import RowSource


@dataclass
class _Inputs:
    """What ``fit`` trains on, once validated."""

    source: RowSource
    tasks: list[TaskSpec]
    Y: np.ndarray
    task_weights: list[float]
    feature_names: np.ndarray | None
    backed: bool
    anndata_input: dict | None


@shared("design_params", "compute_params")
class YOTOSelector(ModelFileMixin, PanelPredictorMixin, SelectorMixin, BaseEstimator):
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
        (``yoto_sklearn._targets.detect_task_type``): text, categories, booleans and
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
    {design_params}
    layer : str, default=None
        With AnnData ``X``: read ``adata.layers[layer]`` instead of ``adata.X``.
    use_raw : bool, default=False
        With AnnData ``X``: read ``adata.raw`` (matrix and gene names). The
        matrix read at fit is recorded (``anndata_input_``) and read again by
        ``predict``, ``transform`` and ``score``, and by ``yoto-sklearn
        predict`` from the model file alone.
    device : str or torch.device, default="auto"
        Where to train: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``,
        ``"cuda"``, ``"cuda:N"``. Resolved in :meth:`fit`. The fitted model always
        lives on the CPU, so pickles load anywhere.
    {compute_params}
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, Gumbel noise, dropout, shuffling and the
        validation split. Fitting never changes numpy's or torch's global RNG state.
    callbacks : list of callables, default=None
        Called at the end of every epoch with an
        :class:`~yoto_sklearn.callbacks.EpochInfo` (epoch, phase, training and
        validation loss, validation score, ...). A callback may log the metrics,
        return True to stop training after that epoch, or raise to abort the fit
        (how Optuna and Ray Tune prune a trial); see :mod:`yoto_sklearn.callbacks`
        and the docs page "Tuning with Optuna / Ray Tune". Not stored in model
        files.
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
    gene_loads_ : ndarray of shape (n_features,) or None
        Each gene's mean expression over all cells of ``X`` (with
        ``expression_budget``; None otherwise).
    panel_load_ : float or None
        The panel's total, ``gene_loads_[support_].sum()`` (at most
        ``expression_budget``).
    gene_penalties_ : ndarray of shape (n_features,) or None
        The per-gene penalties as used (None without, or when all are 0).
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
        Mean validation task score of each epoch: balanced accuracy (mean recall
        over the classes present) for classification tasks, R^2 for regression.
    best_validation_score_ : float or None
        Validation score of the restored weights.
    n_iter_ : int
        Number of epochs run.
    device_ : str
        The device training ran on.
    history_ : History
        Per-epoch record of the run (curves, temperatures, ``best_epoch``,
        ``selection_epochs``, ``stopped_early``, ``interrupted``,
        ``stopped_by_callback``).
    module_ : torch.nn.Module
        The fitted panel network (float64, CPU) mapping the ``k_`` panel genes to
        every task's output; standardisation and BatchNorm are folded in.

    Notes
    -----
    **Row sources.** ``fit``, ``predict``, ``predict_proba``, ``transform`` and
    ``score`` also accept a :class:`~yoto_sklearn.sources.RowSource` as ``X`` (with
    ``y`` as an array): the door for other storage engines, and for choosing the
    chunk sizes of a streamed fit.

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
        **PARAMETER_CONSTRAINTS,
        "device": [str, torch.device],
    }

    # What early stopping watches (see TrainConfig.stop_on); benchmark studies set
    # it on a subclass.
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
        expression_budget: float | None = None,
        gene_penalties: Any = None,
        binarize: bool | float = False,
        normalize_counts: bool | float = False,
        structure_components: int = 0,
        structure_weight: float = 1.0,
        marker_coverage: float = 0.0,
        marker_task: str | int | None = None,
        layer: str | None = None,
        use_raw: bool = False,
        device: str | torch.device = "auto",
        n_threads: int | str | None = "auto",
        n_jobs: int | None = None,
        callbacks: list | None = None,
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
        self.expression_budget = expression_budget
        self.gene_penalties = gene_penalties
        self.binarize = binarize
        self.normalize_counts = normalize_counts
        self.structure_components = structure_components
        self.structure_weight = structure_weight
        self.marker_coverage = marker_coverage
        self.marker_task = marker_task
        self.layer = layer
        self.use_raw = use_raw
        self.device = device
        self.n_threads = n_threads
        self.n_jobs = n_jobs
        self.callbacks = callbacks
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
    def fit(self, X: Any, y: Any = None) -> YOTOSelector:
        """Train the network and select the panel.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData, RowSource} of shape \
(n_samples, n_features)
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
        if not get_config()["skip_parameter_validation"]:
            self._validate_params()
        try:
            with torch_threads(self.n_threads):
                return self._fit(X, y)
        except BaseException:
            # Never leave a half-fitted estimator behind (an error or Ctrl-C after
            # validate_data set n_features_in_, or during a refit): back to unfitted.
            FittedState.clear(self)
            raise

    def _fit(self, X: Any, y: Any) -> YOTOSelector:
        hidden, device = self._check_params(y)
        inputs = self._check_inputs(X, y)
        threads = auto_threads(self.n_threads, inputs.source.n_vars, hidden)
        with torch_threads(threads):
            panel = self._check_panel(inputs)
            seed = derive_seed(self.random_state)
            rng = np.random.default_rng(seed)
            train_idx, val_idx = self._split(inputs, rng)
            data, panel = self._prepare_columns(inputs, panel, train_idx, val_idx)
            data, structure = with_structure(inputs.source, data,
                self.structure_components, self.structure_weight, seed)  # fmt: skip
            panel = with_markers(panel, inputs.tasks, data, self.marker_coverage,
                                 self.marker_task, seed)  # fmt: skip
            losses = self._task_losses(inputs, structure, train_idx, device)
            state = self._fit_stochastic(
                inputs, panel, data, losses, hidden, seed, rng, device
            )
        state.apply(self)
        return self

    def _check_params(self, y: Any) -> tuple[list[int], torch.device]:
        """What the parameters alone decide: layer sizes and the device."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None."
            )
        owner = type(self).__name__
        hidden = check_hidden_layer_sizes(self.hidden_layer_sizes, owner)
        check_batch_size(self.batch_size, self.batch_norm, owner)
        check_callbacks(self.callbacks, owner)
        check_counts_options(self.normalize_counts, self.binarize, owner)
        return hidden, resolve_device(self.device)

    def _check_inputs(self, X: Any, y: Any) -> _Inputs:
        """Validate ``X`` into a row source and ``y`` into encoded tasks."""
        names = anndata_input = None
        if sources.is_anndata(X):
            y = obs_columns(X, y)
            anndata_input = {"layer": self.layer, "use_raw": bool(self.use_raw)}
            X, names = sources.anndata_matrix(X, self.layer, self.use_raw)
            check_unique_names(names, "AnnData var_names")
        elif self.layer is not None or self.use_raw:
            raise ValueError(
                "layer= and use_raw=True choose a matrix of an AnnData X; X is a "
                f"{type(X).__name__}."
            )
        elif isinstance(X, RowSource) and getattr(X, "var_names", None) is not None:
            if sources.has_obs_table(X):  # a SOMA query: targets are obs columns
                y = obs_columns(X, y)
            names = np.asarray(X.var_names, dtype=object)
            check_unique_names(names, "the row source's var_names")
        backed = sources.is_backed_matrix(X) or isinstance(X, RowSource)
        if backed:
            # out of core: validated (finiteness) while streaming, below
            source = X if isinstance(X, RowSource) else sources.BackedSource(X)
            check_min_shape(source.n_obs, source.n_vars)
        else:
            check_X_content(X)
            X = validate_data(
                self,
                X,
                accept_sparse=ACCEPT_SPARSE,
                dtype=FLOAT_DTYPES,
                ensure_min_samples=2,
                ensure_all_finite=True,
            )
            check_float32_range(X)
            source = sources.ArraySource(X)
            if names is None:  # a DataFrame's column names
                names = getattr(self, "feature_names_in_", None)
        if names is not None and not all(isinstance(g, str) for g in names):
            names = None  # feature names are strings, as in scikit-learn
        target_sum = count_target_sum(self.normalize_counts)
        if target_sum is not None:  # raw counts: normalised on the fly
            source = normalized(source, target_sum)
        tasks, Y = encode_targets(y, source.n_obs, self.task_types)
        weights = resolve_task_weights(self.task_weights, [t.name for t in tasks])
        return _Inputs(source, tasks, Y, weights, names, backed, anndata_input)

    def _check_panel(self, inputs: _Inputs) -> PanelDesign:
        """Panel size and the required / excluded genes (names or indices)."""
        return resolve_design(
            self.k,
            self.required_genes,
            self.excluded_genes,
            self.expression_window,
            inputs.source.n_vars,
            inputs.feature_names,
            self.expression_budget,
            self.gene_penalties,
        )

    def _split(
        self, inputs: _Inputs, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Training and validation cells (stratified on the richest task)."""
        train_idx, val_idx = np.arange(inputs.source.n_obs), None
        if self.early_stopping:
            groups = strata(inputs.tasks, inputs.Y)
            train_idx, val_idx = stratified_split(rng, groups, self.validation_fraction)
        if len(train_idx) < 2:
            raise ValueError(
                f"Only {len(train_idx)} training sample(s) left after holding out the "
                "validation part; need at least 2 (use more samples or "
                "early_stopping=False)."
            )
        return train_idx, val_idx

    def _prepare_columns(
        self,
        inputs: _Inputs,
        panel: PanelDesign,
        train_idx: np.ndarray,
        val_idx: np.ndarray | None,
    ) -> tuple[TrainingData, PanelDesign]:
        """Column statistics, expression window and binarisation."""
        source, mean, scale, panel = prepare_columns(
            inputs.source,
            panel,
            train_idx if val_idx is not None else None,
            standardize=bool(self.standardize),
            scan=inputs.backed,
            threshold=binarize_threshold(self.binarize),
            names=inputs.feature_names,
            n_jobs=self.n_jobs,
        )
        data = TrainingData(source, inputs.Y, train_idx, val_idx, mean, scale)
        return replace(data, n_jobs=self.n_jobs), panel

    def _task_losses(
        self,
        inputs: _Inputs,
        structure: list[float],
        train_idx: np.ndarray,
        device: torch.device,
    ) -> tuple[list[TaskLoss], list[TaskLoss]]:
        """Per-task losses of the selection and of the refinement phase."""
        phases = self._cw_phases or (self.class_weight,) * 2
        Y, weights = inputs.Y[train_idx], inputs.task_weights
        losses = [
            task_losses(inputs.tasks, Y, weights, scheme, device, structure)
            for scheme in dict.fromkeys(phases)
        ]
        return losses[0], losses[-1]

    def _training_seams(self) -> dict[str, Any]:
        """Extra keyword arguments of :func:`~yoto_sklearn._training.train`.

        None by default. Experiments and tests override this on a subclass to
        replace the training loss (``loss_fn``) or the validation
        (``evaluate_fn``) without patching the package.
        """
        return {}

    def _fit_stochastic(
        self,
        inputs: _Inputs,
        panel: PanelDesign,
        data: TrainingData,
        losses: tuple[list[TaskLoss], list[TaskLoss]],
        hidden: list[int],
        seed: int,
        rng: np.random.Generator,
        device: torch.device,
    ) -> FittedState:
        """Build the network, train it, and return the fitted state."""
        with seeded_torch(seed, device):
            net = YOTONetwork(
                data.source.n_vars,
                panel.k,
                hidden,
                [t.n_outputs for t in inputs.tasks]
                + [1] * (len(losses[0]) - len(inputs.tasks)),
                dropout=float(self.dropout),
                batch_norm=bool(self.batch_norm),
                relaxation=self.relaxation,
                required=panel.required.tolist(),
                excluded=panel.excluded.tolist(),
                loads=panel.loads,
                budget=panel.budget,
                penalties=panel.penalties,
                markers=panel.markers,
                marker_weight=float(self.marker_coverage),
            )
            generator = torch.Generator(device=device)
            generator.manual_seed(seed + 1)
            history = History()
            try:
                train(
                    net,
                    data=data,
                    losses=losses[0],
                    refine_losses=losses[1],
                    config=TrainConfig.from_params(self.get_params(), self._stop_on),
                    rng=rng,
                    generator=generator,
                    device=device,
                    history=history,
                    callbacks=list(self.callbacks or ()),
                    **self._training_seams(),
                )
            except KeyboardInterrupt:
                if not recover_from_interrupt(net, history):
                    raise
                warnings.warn(
                    f"fit was interrupted (KeyboardInterrupt) at epoch "
                    f"{history.n_iter} of {self.max_iter}, after the panel "
                    "selection had finished: the fitted model uses the selected "
                    "panel and the best network weights so far.",
                    ConvergenceWarning,
                    stacklevel=5,
                )
            check_finite_network(net)
            # linear_from uses skip_init, so exporting draws no random numbers;
            # staying inside the seeded block keeps it that way for any future layer.
            return FittedState.from_training(
                net,
                tasks=inputs.tasks,
                history=history,
                mean=data.mean,
                scale=data.scale,
                device=device,
                required=panel.required,
                excluded=panel.excluded,
                feature_names=inputs.feature_names,
                anndata_input=inputs.anndata_input,
                binarize=binarize_threshold(self.binarize),
                target_sum=count_target_sum(self.normalize_counts),
                loads=panel.loads,
                penalties=panel.penalties,
            )


__all__ = ["YOTOSelector"]
