"""A newcomer's second run (issue 22): pictures that cannot be misread, scaled data
flagged, named multi-task predictions, a per-task refit in scikit-learn tools."""

from __future__ import annotations

import os
import stat

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tests._scverse_data import make_adata
from yoto_sklearn import PanelRefit, YOTOSelector, plotting

from .conftest import FAST, make_data

FIT = dict(FAST, n_threads=1)


def _texts(fig):
    out = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        legend = ax.get_legend()
        if legend is not None:
            out += [t.get_text() for t in legend.get_texts()]
        out += [t.get_text() for t in ax.texts]
        out += [t.get_text() for t in ax.get_yticklabels()]
    return " | ".join(out)


def test_training_curves_mark_the_switch_the_kept_epoch_and_the_stop():
    X, y = make_data(n=200)
    params = dict(FIT, max_iter=40, early_stopping=True, n_iter_no_change=3)
    sel = YOTOSelector(**params).fit(X, y)
    text = _texts(plotting.plot_training_curves(sel))
    assert f"panel fixed after epoch {sel.history_.selection_epochs}" in text
    assert f"weights kept: epoch {sel.history_.best_epoch}" in text
    assert "mean balanced accuracy / R²" in text
    assert f"stopped early at epoch {sel.n_iter_} of 40" in text


def test_gene_scores_show_required_genes_as_placed():
    adata = make_adata()
    sel = YOTOSelector(**dict(FIT, k=5), required_genes=["G10", "G11"]).fit(
        adata, "cell_type"
    )
    fig = plotting.plot_gene_scores(sel)
    text = _texts(fig)
    assert "required: placed, score not learned (2)" in text
    assert text.count("required: placed first") == 2
    ax = fig.axes[0]
    # x = the fitted rank: the required genes sit at ranks 1 and 2
    required = [c for c in ax.collections if c.get_label().startswith("required")]
    assert sorted(required[0].get_offsets()[:, 0]) == [1, 2]


def test_confusion_titles_say_which_cells():
    X, y = make_data()
    sel = YOTOSelector(**FIT).fit(X, y)
    figs = plotting.plot_confusion_matrices(
        sel, X, y.reshape(-1, 1), cells="training cells (not held out)"
    )
    assert f"on {len(y)} training cells (not held out)" in _texts(figs["task0"])


def test_dot_plot_groups_genes_by_the_class_they_mark():
    adata = make_adata()
    sel = YOTOSelector(**dict(FIT, k=6), required_genes=["G4", "G0", "G2"])
    sel.fit(adata, "cell_type")
    fig = plotting.plot_panel_expression(
        sel, adata, adata.obs["cell_type"], use_scanpy=False
    )
    order = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    classes = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    marker_of = {"G0": "T", "G1": "T", "G2": "B", "G3": "B", "G4": "NK", "G5": "NK"}
    marked = [classes.index(marker_of[g]) for g in order if g in marker_of]
    assert marked == sorted(marked)  # blocks follow the class order


def test_scaled_data_are_flagged_for_expression_options_and_plots():
    adata = make_adata()
    scaled = adata.copy()
    X = np.asarray(scaled.X)
    scaled.X = (X - X.mean(axis=0)) / X.std(axis=0)
    with pytest.warns(UserWarning, match="looks scaled .*use_raw=True or layer"):
        YOTOSelector(**FIT, binarize=True).fit(scaled, "cell_type")
    with pytest.warns(UserWarning, match="looks scaled"):
        YOTOSelector(**FIT, expression_window=(None, 5)).fit(scaled, "cell_type")
    sel = YOTOSelector(**FIT).fit(scaled, "cell_type")
    with pytest.warns(UserWarning, match="negative numbers, as scaled data"):
        plotting.plot_panel_expression(sel, scaled, scaled.obs["cell_type"])


def test_predict_frame_names_the_tasks_and_keeps_the_cells():
    adata = make_adata()
    sel = YOTOSelector(**FIT).fit(adata, ["cell_type", "score"])
    table = sel.predict_frame(adata)
    assert list(table.columns) == ["cell_type", "score"]
    assert table.index.equals(adata.obs_names)
    assert table["score"].dtype == np.float64
    np.testing.assert_array_equal(table["cell_type"], sel.predict(adata)[:, 0])


def test_panel_refit_per_task_inside_cross_validation():
    X, y = make_data(n=240)
    rng = np.random.default_rng(0)
    other = np.where(rng.random(240) < 0.3, np.nan, (X[:, 0] > 0).astype(float))
    Y = pd.DataFrame({"kind": y, "other": other})
    clf = make_pipeline(StandardScaler(), LogisticRegression())
    refit = PanelRefit(YOTOSelector(**FIT), clf, task="other")
    scores = cross_val_score(refit, X, Y, cv=3)
    assert scores.shape == (3,) and (scores > 0.8).all()
    refit.fit(X, Y)
    assert refit.predict(X).shape == (240,) and refit.task_ == "other"
    assert len(refit.selector_.support_) == FAST["k"]
    with pytest.raises(ValueError, match="task 'nope' is not a column"):
        PanelRefit(YOTOSelector(**FIT), clf, task="nope").fit(X, Y)


def test_model_files_get_the_usual_file_mode(tmp_path):
    X, y = make_data()
    sel = YOTOSelector(**FIT).fit(X, y)
    path = tmp_path / "m.safetensors"
    sel.save(path)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_early_stop_note_goes_to_stderr_not_stdout(capsys):
    """stdout carries results (the CLI's tables, piped to files); notes go to stderr."""
    X, y = make_data(n=200)
    params = dict(FIT, max_iter=40, early_stopping=True, n_iter_no_change=2)
    sel = YOTOSelector(**{**params, "verbose": 1}).fit(X, y)
    assert sel.history_.stopped_early
    out, err = capsys.readouterr()
    assert "stopped early" not in out
    assert f"YOTO stopped early at epoch {sel.n_iter_} of 40" in err
