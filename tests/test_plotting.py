from __future__ import annotations

import sys

import matplotlib
import numpy as np
import pytest

from tests._scverse_data import FAST, make_adata
from yoto_sklearn import plotting
from yoto_sklearn.anndata import obs_targets, select_genes

matplotlib.use("Agg")

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def fitted():
    adata = make_adata()
    targets = ["cell_type", "score", "batch"]
    selector = select_genes(adata, targets, k=6, **FAST)
    y, _ = obs_targets(adata.obs, targets)
    return selector, adata, y


def test_training_curves_png(fitted, tmp_path):
    selector, _, _ = fitted
    path = tmp_path / "curves.png"
    fig = plotting.plot_training_curves(selector, path=path)
    assert path.read_bytes()[:8] == PNG
    assert fig.axes[0].get_xlabel() == "epoch"
    assert len(fig.axes[0].lines) >= 1


def test_gene_scores_png_names_the_panel(fitted, tmp_path):
    selector, adata, _ = fitted
    path = tmp_path / "scores.png"
    fig = plotting.plot_gene_scores(selector, path=path)
    assert path.read_bytes()[:8] == PNG
    panel_ax = fig.axes[1]
    labels = [t.get_text() for t in panel_ax.get_yticklabels()]
    best_first = list(adata.var_names[np.asarray(selector.support_)])
    assert labels == best_first
    fig = plotting.plot_gene_scores(selector, feature_names=list("abcdefghij" * 4))
    with pytest.raises(ValueError, match="feature_names has 3 entries for 40"):
        plotting.plot_gene_scores(selector, feature_names=["a", "b", "c"])


def test_confusion_matrix_per_classification_task(fitted, tmp_path):
    selector, adata, y = fitted
    figures = plotting.plot_confusion_matrices(selector, adata, y, directory=tmp_path)
    assert set(figures) == {"cell_type", "batch"}
    for name in ("cell_type", "batch"):
        assert (tmp_path / f"confusion_{name}.png").read_bytes()[:8] == PNG
    with pytest.raises(
        ValueError, match=r"y has 1 task column\(s\) but the model was fitted on 3"
    ):
        plotting.plot_confusion_matrices(selector, adata, y[["score"]])


def test_confusion_matrix_skips_missing_labels(tmp_path):
    y_true = np.array(["a", None, "b", "b", np.nan], dtype=object)
    y_pred = np.array(["a", "a", "b", "a", "b"], dtype=object)
    fig = plotting.plot_confusion_matrix(
        y_true, y_pred, title="t", path=tmp_path / "cm.png"
    )
    assert "accuracy 0.667" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="no cell has a true label"):
        plotting.plot_confusion_matrix([None], ["a"])
    with pytest.raises(ValueError, match="y_true has 2 labels but y_pred has 1"):
        plotting.plot_confusion_matrix(["a", "b"], ["a"])


def test_unfitted_selector_is_refused():
    import yoto_sklearn

    with pytest.raises(ValueError, match="fit it before plotting"):
        plotting.plot_training_curves(yoto_sklearn.YOTOSelector())
    with pytest.raises(ValueError, match="fit it before plotting"):
        plotting.plot_gene_scores(yoto_sklearn.YOTOSelector())


def test_missing_matplotlib_names_the_extra(fitted, monkeypatch):
    selector, _, _ = fitted
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install \"yoto-sklearn\[plot\]\""):
        plotting.plot_training_curves(selector)


def test_confusion_matrix_int_and_float_labels_match():
    fig = plotting.plot_confusion_matrix([0, 1, 2, 2], np.array([0.0, 1.0, 2.0, 1.0]))
    assert "accuracy 0.750" in fig.axes[0].get_title()
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == ["0", "1", "2"]


def test_panel_expression_dots_show_detection_and_scaled_mean(fitted, tmp_path):
    selector, adata, y = fitted
    path = tmp_path / "dots.png"
    labels = y["cell_type"].to_numpy(dtype=object)
    fig = plotting.plot_panel_expression(
        selector, adata, labels, use_scanpy=False, path=path
    )
    assert path.read_bytes()[:8] == PNG
    panel = np.asarray(adata.X)[:, selector.support_]
    classes = sorted(set(labels))  # B, NK, T
    frac = np.array([(panel[labels == c] > 0).mean(axis=0) for c in classes])
    mean = np.array([panel[labels == c].mean(axis=0) for c in classes])
    scaled = (mean - mean.min(0)) / (mean.max(0) - mean.min(0))
    # genes grouped by the class they mark, the strongest first within a class
    marked = scaled.argmax(axis=0)
    order = sorted(range(len(marked)), key=lambda g: (marked[g], -scaled[marked[g], g]))
    dots = fig.axes[0].collections[0]
    np.testing.assert_allclose(dots.get_sizes(), frac[:, order].ravel() * 160 + 1)
    np.testing.assert_allclose(dots.get_array(), scaled[:, order].ravel(), rtol=1e-5)
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == list(adata.var_names[selector.support_][order])
    assert sorted(marked[order]) == list(marked[order])  # one block per class


def test_panel_expressions_one_per_classification_task(fitted, tmp_path):
    pytest.importorskip("scanpy")
    import matplotlib.pyplot as plt

    selector, adata, y = fitted
    before = plt.get_fignums()
    figures = plotting.plot_panel_expressions(
        selector, adata, y[["batch", "score", "cell_type"]], directory=tmp_path
    )  # columns matched to the tasks by name
    assert set(figures) == {"cell_type", "batch"}
    assert (tmp_path / "panel_expression_cell_type.png").read_bytes()[:8] == PNG
    assert plt.get_fignums() == before  # scanpy's pyplot figures are released


def test_panel_expression_without_scanpy(fitted, tmp_path, monkeypatch):
    selector, adata, y = fitted
    # importlib.util.find_spec answers None for a module set to None here
    monkeypatch.setitem(sys.modules, "scanpy", None)
    fig = plotting.plot_panel_expression(selector, adata, y["batch"].to_numpy())
    assert len(fig.axes[0].collections) >= 1
