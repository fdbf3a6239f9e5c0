"""Round 3 of trying the package as a new user would, on what this round built.

Callbacks, row sources, the structure heads, ``layer`` / ``use_raw``,
``evaluate_panel`` and ``yoto-sklearn evaluate``, ``PanelRefit``, ``predict_frame``,
the new picture options, and the fixes of issue 20. Each case is either a bad input
that must give one clear error (exception type and message), or an input that must
give the right answer (a check on the result). ``python -m tests.test_round3``
prints the table of docs/reliability.md ("Round 3").
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.utils._param_validation import InvalidParameterError

from yoto_sklearn import PanelRefit, YOTOSelector, plotting
from yoto_sklearn.callbacks import EpochLogger
from yoto_sklearn.cli import main
from yoto_sklearn.evaluation import evaluate_panel
from yoto_sklearn.sources import ArraySource, BackedSource, binarized
from yoto_sklearn.stability import panel_stability

from .conftest import FAST as BASE_FAST

FAST = dict(BASE_FAST, max_iter=2, n_threads=1, device="cpu")
N, G = 60, 12
RNG = np.random.default_rng(3)
X0 = np.abs(RNG.normal(size=(N, G)))
Y0 = np.arange(N) % 2
X0[Y0 == 1, 0] += 2
NAMES = [f"g{i}" for i in range(G)]
TMP = Path(tempfile.mkdtemp(prefix="yoto-round3-"))
FRAME = pd.DataFrame(X0, columns=NAMES, index=[f"c{i}" for i in range(N)])


def _adata(raw: bool = False, layer: bool = False) -> ad.AnnData:
    obs = pd.DataFrame({"ct": np.where(Y0 == 0, "B", "T"),
                        "half": np.where(np.arange(N) < 30, np.where(Y0 == 0, "x", "y"),
                                        None)},
                       index=[f"c{i}" for i in range(N)])  # fmt: skip
    a = ad.AnnData(X0.astype(np.float32), obs=obs)
    a.var_names = NAMES
    if layer:
        a.layers["counts"] = np.round(np.expm1(X0)).astype(np.float32)
    if raw:
        a.raw = a.copy()
    return a


def fit(X: Any = None, y: Any = None, **params: Any) -> Callable[[], Any]:
    X = X0 if X is None else X
    y = Y0 if y is None else y
    return lambda: YOTOSelector(**{**FAST, **params}).fit(X, y)


def cli(*args: str) -> Callable[[], int]:
    return lambda: main([*args])


def _h5ad(name: str = "cells.h5ad", **kwargs: Any) -> str:
    path = TMP / name
    if not path.exists():
        _adata(**kwargs).write_h5ad(path)
    return str(path)


def _text(name: str, content: str, encoding: str = "utf-8") -> str:
    path = TMP / name
    path.write_text(content, encoding=encoding)
    return str(path)


def _fitted_run() -> str:
    out = TMP / "run"
    if not (out / "model.safetensors").exists():
        main(["fit", _h5ad(), "-t", "ct", "--k", "3", "--out", str(out), "--quiet",
              "--max-iter", "2", "--set", "hidden_layer_sizes=(8,)"])  # fmt: skip
    return str(out)


class CountedSource(ArraySource):
    """A source whose chunks hold NaN in row 5 (a broken reader)."""

    def chunks(self, chunk_rows=None):
        for start, block in super().chunks(chunk_rows):
            block = np.array(block, dtype=float)
            if start == 0:
                block[5, 0] = np.nan
            yield start, block


@dataclass
class Case:
    id: str
    what: str
    action: Callable[[], Any]
    exc: type[BaseException] | None = None  # None: must work, and pass check
    match: str = ""
    check: Callable[[Any], bool] | None = None
    skip: str | None = None


def _skip_without(module: str) -> str | None:
    import importlib.util

    return None if importlib.util.find_spec(module) else f"{module} not installed"


def _stops_at_two(results: list) -> Callable[[], Any]:
    def action():
        return YOTOSelector(**dict(FAST, max_iter=6),
                            callbacks=[lambda i: i.epoch == 2]).fit(X0, Y0)  # fmt: skip

    return action


def _records() -> Callable[[], Any]:
    logger = EpochLogger()

    def action():
        YOTOSelector(**dict(FAST, max_iter=3), callbacks=[logger]).fit(X0, Y0)
        return logger.records

    return action


def _raises_inside() -> Callable[[], Any]:
    def boom(info):
        raise RuntimeError("tracker offline")

    return fit(callbacks=[boom])


def _predict(model_kwargs: dict, X_fit: Any, y: Any, X_new: Any, method="predict"):
    def action():
        sel = YOTOSelector(**{**FAST, **model_kwargs}).fit(X_fit, y)
        return getattr(sel, method)(X_new)

    return action


def _backed(fmt: str = "csr") -> Any:
    path = TMP / f"backed_{fmt}.h5ad"
    if not path.exists():
        X = sp.csr_matrix(X0.astype(np.float32))
        ad.AnnData(X if fmt == "csr" else sp.csc_matrix(X)).write_h5ad(path)
    return ad.read_h5ad(path, backed="r").X


def _evaluate(panels: Any, targets: Any = "ct", **kwargs: Any) -> Callable[[], Any]:
    kwargs = {"spapros": False, **kwargs}
    return lambda: evaluate_panel(_adata(), panels, targets, max_iter=2, **kwargs)


def _refit(task: Any, y: Any = None, estimator: Any = None) -> Callable[[], Any]:
    y = (
        pd.DataFrame({"ct": Y0, "other": (X0[:, 1] > 1).astype(int)})
        if y is None
        else y
    )
    est = LogisticRegression() if estimator is None else estimator
    return lambda: PanelRefit(YOTOSelector(**FAST), est, task=task).fit(X0, y)


def _plot(fn: str, *args: Any, **kwargs: Any) -> Callable[[], Any]:
    def action():
        sel = YOTOSelector(**FAST).fit(X0, Y0)
        return getattr(plotting, fn)(sel, *args, **kwargs)

    return action


def _stability(**kwargs: Any) -> Callable[[], Any]:
    return lambda: panel_stability(YOTOSelector(**FAST), X0, Y0, **kwargs)


def _inputs_cases(prefix: str, what: str, **params: Any) -> list[Case]:
    """An option on half-labelled, CSR and backed input: it fits, right size."""
    return [
        Case(f"{prefix}_missing_labels", f"{what}, half the labels missing",
             fit(y=np.where(np.arange(N) < 30, Y0, np.nan), **params),
             check=lambda s: s.k_ == 3),
        Case(f"{prefix}_sparse", f"{what} on CSR input",
             fit(X=sp.csr_matrix(X0), **params), check=lambda s: s.k_ == 3),
        Case(f"{prefix}_backed", f"{what} on a backed AnnData matrix",
             lambda: YOTOSelector(**FAST, **params).fit(_backed(), Y0),
             check=lambda s: s.n_features_in_ == G),
    ]  # fmt: skip


# fmt: off
CASES = [
    # ---- structure heads
    *[Case(f"structure_components_{i}", f"`structure_components={v!r}`",
           fit(structure_components=v), InvalidParameterError,
           "'structure_components' parameter")
      for i, v in enumerate([-1, 2.5, "3", True])],
    *[Case(f"structure_weight_{i}", f"`structure_weight={v!r}`",
           fit(structure_components=2, structure_weight=v), InvalidParameterError,
           "'structure_weight' parameter")
      for i, v in enumerate([0, -1.0, float("nan"), "high"])],
    Case("structure_more_than_genes", "`structure_components=50` with 12 genes",
         fit(structure_components=50), check=lambda s: len(s.module_.heads) == 1),
    Case("structure_regression", "structure heads with a regression task",
         fit(y=X0[:, 2] * 2, structure_components=3),
         check=lambda s: s.task_types_ == ["regression"]),
    *_inputs_cases("structure", "structure heads", structure_components=3),
    Case("structure_binarize", "structure heads with `binarize=True`",
         fit(structure_components=2, binarize=True), check=lambda s: s.k_ == 3),
    # ---- marker coverage
    *[Case(f"marker_coverage_{i}", f"`marker_coverage={v!r}`",
           fit(marker_coverage=v), InvalidParameterError,
           "'marker_coverage' parameter")
      for i, v in enumerate([-1.0, "high", None])],
    *[Case(f"marker_task_{i}", f"`marker_task={v!r}`",
           fit(marker_coverage=1.0, marker_task=v), InvalidParameterError,
           "'marker_task' parameter")
      for i, v in enumerate([1.5, -1, True])],
    Case("marker_task_unknown", "`marker_task='nope'` (no such task)",
         fit(y=pd.DataFrame({"ct": Y0}), marker_coverage=1.0, marker_task="nope"),
         ValueError, "is not a task name"),
    Case("marker_task_out_of_range", "`marker_task=3` with 2 tasks",
         fit(y=np.column_stack([X0[:, 2] * 2, Y0]), marker_coverage=1.0,
             marker_task=3), ValueError, "out of range"),
    Case("marker_task_regression", "`marker_task` naming a regression task",
         fit(y=np.column_stack([X0[:, 2] * 2, Y0]), marker_coverage=1.0,
             marker_task=0), ValueError, "is a regression task"),
    Case("marker_coverage_regression_only", "`marker_coverage=1` with only a "
         "regression task", fit(y=X0[:, 2] * 2, marker_coverage=1.0), ValueError,
         "the tasks are all regression"),
    Case("marker_task_by_name", "`marker_task='ct'` with a regression task first",
         fit(y=pd.DataFrame({"r": X0[:, 2] * 2, "ct": Y0}), marker_coverage=1.0,
             marker_task="ct"), check=lambda s: s.task_names_ == ["r", "ct"]),
    *_inputs_cases("marker", "marker coverage", marker_coverage=1.0),
    Case("marker_excluded", "marker coverage with the marker gene excluded",
         fit(marker_coverage=1.0, excluded_genes=[0]),
         check=lambda s: 0 not in s.support_),
    # ---- layer / use_raw
    Case("layer_missing", "`layer='nope'` on an AnnData",
         fit(X=_adata(), y="ct", layer="nope"), ValueError,
         r"layer 'nope' not found; the data has layers"),
    Case("use_raw_without_raw", "`use_raw=True` on an AnnData without .raw",
         fit(X=_adata(), y="ct", use_raw=True), ValueError, r"has no \.raw"),
    Case("layer_and_raw", "`layer=` and `use_raw=True` together",
         fit(X=_adata(raw=True, layer=True), y="ct", layer="counts", use_raw=True),
         ValueError, "not both"),
    Case("layer_with_array", "`layer=` with a numpy X",
         fit(layer="counts"), ValueError, "choose a matrix of an AnnData X"),
    Case("use_raw_with_frame", "`use_raw=True` with a DataFrame X",
         fit(X=pd.DataFrame(X0, columns=NAMES), use_raw=True), ValueError,
         "choose a matrix of an AnnData X"),
    Case("layer_not_str", "`layer=3`", fit(X=_adata(), y="ct", layer=3),
         InvalidParameterError, "'layer' parameter"),
    Case("use_raw_not_bool", "`use_raw='yes'`", fit(X=_adata(), y="ct", use_raw="yes"),
         InvalidParameterError, "'use_raw' parameter"),
    Case("predict_layer_missing", "predict on an AnnData lacking the fitted layer",
         _predict({"layer": "counts"}, _adata(layer=True), "ct", _adata()),
         ValueError, "layer 'counts' not found"),
    Case("predict_reads_fitted_layer", "predict reads the fitted layer again",
         _predict({"layer": "counts"}, _adata(layer=True), "ct", _adata(layer=True)),
         check=lambda p: len(p) == N),
    Case("raw_recorded", "`use_raw=True` is recorded in the fitted model",
         fit(X=_adata(raw=True), y="ct", use_raw=True),
         check=lambda s: s.anndata_input_ == {"layer": None, "use_raw": True}),
    # ---- callbacks
    Case("callbacks_not_list", "`callbacks=print` (not a list)",
         fit(callbacks=print), InvalidParameterError, "'callbacks' parameter"),
    Case("callbacks_str_entry", "`callbacks=['log']`", fit(callbacks=["log"]),
         InvalidParameterError, "entry 0 is str"),
    Case("callbacks_dict", "`callbacks={'a': f}`", fit(callbacks={"a": print}),
         InvalidParameterError, "'callbacks' parameter"),
    Case("callback_raises", "a callback that raises `RuntimeError`",
         _raises_inside(), RuntimeError, "tracker offline"),
    Case("callback_stops", "a callback returning True at epoch 2",
         _stops_at_two([]), check=lambda s: s.n_iter_ == 2),
    Case("callback_empty", "`callbacks=[]`", fit(callbacks=[]),
         check=lambda s: s.n_iter_ == 2),
    Case("callback_logger", "`EpochLogger` records every epoch", _records(),
         check=lambda r: [x["epoch"] for x in r] == [1, 2, 3]),
    # ---- row sources
    Case("source_wrong_genes_predict", "predict a row source with other genes",
         _predict({}, ArraySource(X0), Y0, ArraySource(X0[:, :5])), ValueError,
         "X has 5 features, but YOTOSelector is expecting 12"),
    Case("source_one_row", "fit on a row source of one cell",
         fit(X=ArraySource(X0[:1]), y=Y0[:1]), ValueError, "minimum of 2 is required"),
    Case("source_duplicate_names", "row source with duplicated var_names",
         fit(X=ArraySource(X0, var_names=["g"] * G)), ValueError,
         "Duplicate feature names in the row source's var_names"),
    Case("source_nan_chunk", "a row source whose chunks hold NaN",
         fit(X=CountedSource(X0)), ValueError, "NaN or infinity"),
    Case("source_y_length", "row source with a `y` of another length",
         fit(X=ArraySource(X0), y=Y0[:10]), ValueError, "inconsistent numbers"),
    Case("source_csc", "`ArraySource` of a CSC matrix (converted once)",
         fit(X=ArraySource(sp.csc_matrix(X0))), check=lambda s: s.k_ == 3),
    Case("backed_csc", "`BackedSource` of a CSC dataset",
         lambda: BackedSource(_backed("csc")), ValueError, "stored as CSC"),
    Case("source_names_kept", "row source `var_names` become feature names",
         fit(X=ArraySource(X0, var_names=NAMES)),
         check=lambda s: list(s.feature_names_in_) == NAMES),
    Case("binarized_source_predict", "predict a binarised model on a row source",
         _predict({"binarize": 0.5}, X0, Y0, ArraySource(X0)),
         check=lambda p: len(p) == N),
    Case("binarized_helper", "`binarized(ArraySource)` detects on stored values",
         lambda: next(binarized(ArraySource(X0), 1.0).batches(np.arange(N), N, None)),
         check=lambda b: set(np.unique(b[1])) <= {0.0, 1.0}),
    # ---- evaluate_panel
    Case("evaluate_unknown_target", "`evaluate_panel` with an unknown target",
         _evaluate(NAMES[:3], "nope"), ValueError, r"unknown obs column.*'nope'"),
    Case("evaluate_empty_targets", "`evaluate_panel` with no target",
         _evaluate(NAMES[:3], []), ValueError, "targets is empty"),
    *[Case(f"evaluate_test_size_{i}", f"`evaluate_panel(test_size={v!r})`",
           _evaluate(NAMES[:3], test_size=v), InvalidParameterError,
           "'test_size' parameter") for i, v in enumerate([0, 1, 1.5, "x"])],
    Case("evaluate_forest_min", "`evaluate_panel(forest_min_cells=1)`",
         _evaluate(NAMES[:3], forest_min_cells=1), InvalidParameterError,
         "'forest_min_cells' parameter"),
    Case("evaluate_k", "`evaluate_panel(..., k=3)`", _evaluate(NAMES[:3], k=3),
         ValueError, r"\['k'\] cannot be set"),
    Case("evaluate_required", "`evaluate_panel(..., required_genes=[...])`",
         _evaluate(NAMES[:3], required_genes=["g0"]), ValueError, "cannot be set"),
    Case("evaluate_not_anndata", "`evaluate_panel` on a numpy array",
         lambda: evaluate_panel(X0, NAMES[:3], "ct"), InvalidParameterError,
         "'adata' parameter"),
    Case("evaluate_index_panel", "a panel given as a pandas Index",
         _evaluate(pd.Index(NAMES[:3])), check=lambda t: list(t.columns) == ["panel"]),
    Case("evaluate_numpy_panel", "a panel of numpy strings",
         _evaluate(np.asarray(NAMES[:3])), check=lambda t: t.shape[1] == 1),
    Case("evaluate_two_panels", "two panels side by side",
         _evaluate({"a": NAMES[:3], "b": NAMES[3:6]}),
         check=lambda t: list(t.columns) == ["a", "b"]),
    Case("evaluate_missing_labels", "a target labelled for half the cells",
         _evaluate(NAMES[:3], ["ct", "half"]),
         check=lambda t: ("YOTO heads", "half", "f1_macro") in t.index),
    Case("evaluate_layer_missing", "`evaluate_panel(layer='nope')`",
         _evaluate(NAMES[:3], layer="nope"), ValueError, "layer 'nope' not found"),
    Case("evaluate_spapros_required", "`spapros=True` without spapros installed",
         lambda: _without_spapros(_evaluate(NAMES[:3], spapros=True)), ImportError,
         "pip install spapros"),
    # ---- PanelRefit
    Case("refit_task_unknown", "`PanelRefit(task='nope')`", _refit("nope"), ValueError,
         "task 'nope' is not a column of y"),
    Case("refit_task_range", "`PanelRefit(task=5)` with 2 tasks", _refit(5), ValueError,
         "task 5 is out of range"),
    Case("refit_estimator", "`PanelRefit` with an estimator without predict",
         _refit(0, estimator=object()), InvalidParameterError, "'estimator' parameter"),
    Case("refit_task_type", "`PanelRefit(task=1.5)`", _refit(1.5),
         InvalidParameterError, "'task' parameter"),
    Case("refit_1d", "`PanelRefit` with a 1-D y (task 0)", _refit(0, y=Y0),
         check=lambda r: r.task_ == "task0"),
    Case("refit_unfitted", "`PanelRefit.predict` before fit",
         lambda: PanelRefit(YOTOSelector(), LogisticRegression()).predict(X0),
         NotFittedError, "not fitted yet"),
    Case("refit_missing_labels", "`PanelRefit` on a task with missing labels",
         _refit("other", y=pd.DataFrame({"ct": Y0, "other": np.where(
             np.arange(N) % 3 == 0, np.nan, Y0)})),
         check=lambda r: r.estimator_.n_features_in_ == 3),
    # ---- predict_frame
    Case("predict_frame_unfitted", "`predict_frame` before fit",
         lambda: YOTOSelector().predict_frame(X0), NotFittedError, "not fitted yet"),
    Case("predict_frame_index", "`predict_frame` keeps a DataFrame's index",
         _predict({}, FRAME, Y0, FRAME, "predict_frame"),
         check=lambda t: t.index[0] == "c0"),
    Case("predict_frame_names", "`predict_frame` names the tasks",
         _predict({}, X0, pd.DataFrame({"a": Y0, "b": X0[:, 3]}), X0, "predict_frame"),
         check=lambda t: list(t.columns) == ["a", "b"]),
    # ---- pictures
    Case("plot_cells_not_str", "`plot_confusion_matrices(cells=3)`",
         _plot("plot_confusion_matrices", X0, Y0.reshape(-1, 1), cells=3),
         InvalidParameterError, "'cells' parameter"),
    Case("plot_curves_no_validation", "training curves without validation cells",
         _plot("plot_training_curves"), check=lambda f: len(f.axes) == 1),
    Case("plot_dpi_zero", "`plot_gene_scores(dpi=0)`", _plot("plot_gene_scores", dpi=0),
         InvalidParameterError, "'dpi' parameter"),
    Case("plot_expression_length", "dot plot with labels of the wrong length",
         _plot("plot_panel_expression", X0, Y0[:10]), ValueError,
         "labels has 10 entries but X has 60 cells"),
    Case("plot_scaled_warns", "dot plot of z-scored X warns",
         lambda: _warns(_plot("plot_panel_expression", X0 - X0.mean(0), Y0)),
         check=lambda w: "negative numbers" in w),
    # ---- stability
    Case("stability_one_run", "`panel_stability(n_runs=1)`", _stability(n_runs=1),
         InvalidParameterError, r"'n_runs' parameter .* range \[2, inf\)"),
    Case("stability_numpy_runs", "`panel_stability(n_runs=np.int64(2))`",
         _stability(n_runs=np.int64(2)), check=lambda r: r.panels.shape[0] == 2),
    Case("stability_subsample_zero", "`panel_stability(subsample=0)`",
         _stability(subsample=0), InvalidParameterError, "'subsample' parameter"),
    Case("stability_subsample_big", "`panel_stability(subsample=1.5)`",
         _stability(subsample=1.5), InvalidParameterError, "'subsample' parameter"),
    Case("stability_not_estimator", "`panel_stability` of a non-estimator",
         lambda: panel_stability(object(), X0, Y0), InvalidParameterError,
         "'estimator' parameter"),
    # ---- gene lists: masks, sets, pandas
    Case("mask_short", "a boolean mask with too few entries as `excluded_genes`",
         fit(excluded_genes=np.ones(G - 1, dtype=bool)), ValueError,
         "boolean mask of 11 entries for 12 genes"),
    Case("mask_ok", "a boolean mask of one entry per gene",
         fit(excluded_genes=np.arange(G) >= 10), check=lambda s: list(s.excluded_) ==
         [10, 11]),
    Case("set_names", "a set of names as `required_genes`",
         fit(X=pd.DataFrame(X0, columns=NAMES), required_genes={"g5", "g2"}),
         check=lambda s: list(s.required_) == [2, 5]),
    Case("frozenset_ints", "a frozenset of indices",
         fit(excluded_genes=frozenset({4, 1})), check=lambda s: list(s.excluded_) ==
         [1, 4]),
    Case("series_names", "a pandas Series of names",
         fit(X=pd.DataFrame(X0, columns=NAMES), excluded_genes=pd.Series(["g1"])),
         check=lambda s: list(s.excluded_) == [1]),
    Case("mixed_set", "a set mixing names and indices",
         fit(X=pd.DataFrame(X0, columns=NAMES), excluded_genes={"g1", 2}), TypeError,
         "only gene names .* or only column indices"),
    Case("mask_all_true", "a mask excluding every gene",
         fit(excluded_genes=np.ones(G, dtype=bool)), ValueError,
         "only 0 genes can be selected"),
    # ---- binarisation
    Case("binarize_above_all", "`binarize` above every value",
         fit(binarize=100.0), ValueError, "nothing is detected"),
    Case("binarize_negative", "`binarize=-1`", fit(binarize=-1.0),
         InvalidParameterError, "'binarize' parameter"),
    Case("binarize_almost_nothing", "`binarize` detecting a few values warns",
         lambda: _warns(fit(binarize=float(np.sort(X0.ravel())[-5]))),
         check=lambda w: "detects 4 values" in w),
    Case("binarize_sparse", "`binarize=True` on CSR input",
         fit(X=sp.csr_matrix(X0), binarize=True), check=lambda s: s.binarize_threshold_
         == 0.0),
    Case("window_numpy_scalars", "`expression_window=(np.float32(0.1), np.int64(3))`",
         fit(expression_window=(np.float32(0.1), np.int64(3))),
         check=lambda s: s.k_ == 3),
    Case("window_bool", "`expression_window=(True, 3)`",
         fit(expression_window=(True, 3)), ValueError, "bounds must be numbers"),
    # ---- command line
    Case("cli_set_unknown", "`--set alpha=1` (checked before reading data)",
         cli("fit", "missing.h5ad", "-t", "ct", "--k", "3", "--out", str(TMP / "o"),
             "--set", "alpha=1"), check=lambda rc: rc == 1),
    Case("cli_set_twice", "`--max-iter 3 --set max_iter=4`",
         cli("fit", _h5ad(), "-t", "ct", "--k", "3", "--out", str(TMP / "o2"),
             "--max-iter", "3", "--set", "max_iter=4"), check=lambda rc: rc == 1),
    Case("cli_list_no_header", "gene list file, one gene per line, no header",
         cli("fit", _h5ad(), "-t", "ct", "--k", "3", "--out", str(TMP / "o3"),
             "--required-genes", _text("req.csv", "g4\ng5\n"), "--quiet",
             "--max-iter", "2"), check=lambda rc: rc == 0
         and "g4" in set(pd.read_csv(TMP / "o3" / "panel.csv")["gene"])),
    Case("cli_list_bom", "gene list with a UTF-8 byte-order mark",
         cli("fit", _h5ad(), "-t", "ct", "--k", "3", "--out", str(TMP / "o4"),
             "--required-genes", _text("bom.txt", "g6\n", "utf-8-sig"), "--quiet",
             "--max-iter", "2"), check=lambda rc: rc == 0),
    Case("cli_list_comments", "gene list with comments and blank lines",
         cli("fit", _h5ad(), "-t", "ct", "--k", "3", "--out", str(TMP / "o5"),
             "--excluded-genes", _text("ex.txt", "# mito\n\ng0\n"), "--quiet",
             "--max-iter", "2"), check=lambda rc: rc == 0
         and "g0" not in set(pd.read_csv(TMP / "o5" / "panel.csv")["gene"])),
    Case("cli_list_columns", "gene list CSV with two columns and no 'gene' header",
         cli("fit", _h5ad(), "-t", "ct", "--k", "3", "--out", str(TMP / "o6"),
             "--required-genes", _text("two.csv", "g1,3\ng2,4\n")),
         check=lambda rc: rc == 1),
    Case("cli_list_folder", "a folder as a gene list",
         cli("fit", _h5ad(), "-t", "ct", "--k", "3", "--out", str(TMP / "o7"),
             "--required-genes", str(TMP)), check=lambda rc: rc == 1),
    Case("cli_list_typo", "a gene-list path that does not exist",
         cli("fit", _h5ad(), "-t", "ct", "--k", "3", "--out", str(TMP / "o8"),
             "--required-genes", "reqs.txt"), check=lambda rc: rc == 1),
    Case("cli_list_empty", "an empty gene-list file",
         cli("fit", _h5ad(), "-t", "ct", "--k", "3", "--out", str(TMP / "o9"),
             "--required-genes", _text("empty.txt", "\n")), check=lambda rc: rc == 1),
    Case("cli_stability_one", "`--stability-runs 1`",
         lambda: _exit_code(["fit", _h5ad(), "-t", "ct", "--k", "3", "--out",
                             str(TMP / "o10"), "--stability-runs", "1"]),
         check=lambda rc: rc == 2),
    Case("cli_binarize_before_data", "`fit --binarize cells.h5ad ...`",
         cli("fit", "--binarize", _h5ad(), "-t", "ct", "--k", "3", "--out",
             str(TMP / "o11"), "--quiet", "--max-iter", "2"), check=lambda rc: rc == 0),
    Case("cli_evaluate_named", "`evaluate NAME=FILE DATA`",
         cli("evaluate", "mine=" + _text("mine.txt", "g0\ng1\n"), _h5ad(), "-t", "ct",
             "--no-spapros", "--max-iter", "2", "--out", str(TMP / "ev.csv"),
             "--quiet"),
         check=lambda rc: rc == 0
         and list(pd.read_csv(TMP / "ev.csv", index_col=[0, 1, 2]).columns)
         == ["mine"]),
    Case("cli_evaluate_unknown_target", "`evaluate` with an unknown target",
         cli("evaluate", "g0,g1", _h5ad(), "-t", "nope", "--no-spapros"),
         check=lambda rc: rc == 1),
    Case("cli_evaluate_out_suffix", "`evaluate --out table.xlsx`",
         cli("evaluate", "g0,g1", _h5ad(), "-t", "ct", "--out", "t.xlsx"),
         check=lambda rc: rc == 1),
    Case("cli_evaluate_both", "`evaluate --layer L --use-raw`",
         cli("evaluate", "g0,g1", _h5ad(), "-t", "ct", "--layer", "x", "--use-raw"),
         check=lambda rc: rc == 1),
    Case("cli_evaluate_gene_missing", "`evaluate` with a gene not in the data",
         cli("evaluate", "g0,zz", _h5ad(), "-t", "ct", "--no-spapros"),
         check=lambda rc: rc == 1),
    Case("cli_predict_copied_model", "`predict` with the model file alone",
         lambda: main(["predict", str(Path(_fitted_run()) / "model.safetensors"),
                       _h5ad(), "--out", str(TMP / "p.csv")]),
         check=lambda rc: rc == 0),
    Case("cli_predict_h5_named", "`fit` on an .h5ad named .h5",
         lambda: main(["fit", _h5ad("named.h5"), "-t", "ct", "--k", "3", "--out",
                       str(TMP / "o12"), "--quiet", "--max-iter", "2"]),
         check=lambda rc: rc == 0),
]
# fmt: on


def _without_spapros(action: Callable[[], Any]) -> Any:
    saved = sys.modules.get("spapros")
    sys.modules["spapros"] = None
    try:
        return action()
    finally:
        if saved is None:
            sys.modules.pop("spapros", None)
        else:
            sys.modules["spapros"] = saved


def _warns(action: Callable[[], Any]) -> str:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        action()
    return " | ".join(str(w.message) for w in caught)


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse: bad command-line syntax
        return int(exc.code)


def run_case(case: Case) -> tuple[str, str]:
    """("error", message) / ("answer", repr) / ("WRONG", why) for the table."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = case.action()
    except BaseException as exc:  # noqa: BLE001 - reporting only
        if case.exc is not None and isinstance(exc, case.exc):
            return "error", str(exc).replace(str(TMP), "...")
        return "WRONG", f"{type(exc).__name__}: {exc}"
    if case.exc is not None:
        return "WRONG", "no error"
    ok = case.check is None or bool(case.check(result))
    return ("answer", "right answer") if ok else ("WRONG", "wrong answer")


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_round3_case(case, capsys):
    if case.skip:
        pytest.skip(case.skip)
    if case.exc is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            with pytest.raises(case.exc, match=case.match):
                case.action()
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = case.action()
    assert case.check is None or case.check(result), result


def test_round3_has_a_hundred_cases_with_unique_ids():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 100, len(ids)


def markdown_table() -> str:
    """The round-3 table of docs/reliability.md."""
    rows = ["| Input | Expected | Outcome |", "|---|---|---|"]
    for c in CASES:
        kind, text = run_case(c)
        expected = f"`{c.exc.__name__}`" if c.exc else "the right answer"
        first = " ".join(text.split("\n")[:2]).strip()
        first = first if len(first) <= 110 else first[:107] + "..."
        first = first.replace("|", "\\|").replace("`", "'")
        rows.append(f"| {c.what} | {expected} | {first} |")
    return "\n".join(rows)


def test_docs_list_every_round3_case():
    doc = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"
    text = doc.read_text(encoding="utf-8")
    missing = [c.what for c in CASES if f"| {c.what} |" not in text]
    assert not missing, f"docs/reliability.md lacks rows for {missing}"


if __name__ == "__main__":
    print(markdown_table())
