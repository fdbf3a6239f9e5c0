"""Silent wrong answers found by trying the package as a new user would (round 2).

Each test failed before its fix: the call returned a plausible but wrong answer
instead of the right one or a clear error. The same cases are listed in
docs/reliability.md ("Silent wrong answers, round 2").
"""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from yoto_sklearn import YOTOSelector, make_masked_scorer
from yoto_sklearn.anndata import select_genes

from .conftest import FAST, make_data

FIT = dict(FAST, n_threads=1, device="cpu")


def _adata(X, obs=None):
    a = ad.AnnData(
        X.astype(np.float32),
        obs=obs
        if obs is not None
        else pd.DataFrame(index=[f"c{i}" for i in range(len(X))]),
    )
    a.var_names = [f"g{i}" for i in range(X.shape[1])]
    return a


# ----------------------------------------------------------- boolean labels
def test_object_bool_labels_stay_booleans():
    X, y = make_data(n_classes=2)
    labels = pd.Series(y == 1, dtype=object)
    labels[::9] = None  # what a bool obs column with missing labels becomes
    sel = YOTOSelector(**FIT).fit(X, labels)
    assert sel.classes_.dtype == bool
    pred = sel.predict(X)
    assert pred.dtype == bool and set(pred) <= {True, False}
    assert sel.score(X, labels) > 0.5  # labels compare equal to the predictions


def test_bool_obs_column_through_select_genes_predicts_booleans():
    X, y = make_data(n_classes=2)
    obs = pd.DataFrame({"sick": y == 1}, index=[f"c{i}" for i in range(len(y))])
    adata = _adata(X, obs)
    sel = select_genes(adata, "sick", k=3, **{k: v for k, v in FIT.items() if k != "k"})
    assert sel.predict(adata).dtype == bool
    assert adata.uns["yoto"]["metrics"]["sick"]["train"] > 0.5


# ------------------------------------------------------ tasks matched by name
@pytest.fixture(scope="module")
def two_task_model():
    X, y = make_data()
    rng = np.random.default_rng(1)
    Y = pd.DataFrame({"ct": y, "age": X[:, 0] * 3 + rng.normal(size=len(y))})
    return YOTOSelector(**FIT).fit(X, Y), X, Y


def test_score_matches_task_columns_by_name(two_task_model):
    sel, X, Y = two_task_model
    expected = sel.score_tasks(X, Y)
    assert sel.score_tasks(X, Y[["age", "ct"]]) == expected
    assert sel.score(X, Y[["age", "ct"]]) == sel.score(X, Y)
    scorer = make_masked_scorer("accuracy")
    assert scorer(sel, X, Y[["age", "ct"]]) == scorer(sel, X, Y)
    # unnamed targets are matched by position
    assert sel.score_tasks(X, Y.to_numpy()) == pytest.approx(expected)


def test_score_with_renamed_task_columns_is_an_error(two_task_model):
    sel, X, Y = two_task_model
    renamed = Y.rename(columns={"ct": "cell_type"})
    with pytest.raises(ValueError, match=r"columns \['cell_type', 'age'\] are not"):
        sel.score_tasks(X, renamed)
    with pytest.raises(ValueError, match="are not the tasks seen at fit"):
        make_masked_scorer()(sel, X, renamed)


# ----------------------------------------------------- huge regression target
@pytest.mark.parametrize("scale", [1e200, 1e300])
def test_huge_regression_target_is_standardised_without_overflow(scale):
    X, _ = make_data()
    target = X[:, 0] * 2 + X[:, 1]
    small = YOTOSelector(**FIT).fit(X, target)
    big = YOTOSelector(**FIT).fit(X, target * scale)
    pred = big.predict(X)
    assert np.isfinite(pred).all()
    np.testing.assert_allclose(pred / scale, small.predict(X), rtol=1e-4, atol=1e-6)
    assert big.score(X, target * scale) == pytest.approx(small.score(X, target), 1e-4)


# ------------------------------------------------------ alignment on AnnData
def test_anndata_with_series_indexed_by_shuffled_obs_names_is_aligned():
    X, y = make_data()
    adata = _adata(X)
    labels = pd.Series(y, index=adata.obs_names)
    shuffled = labels.sample(frac=1.0, random_state=0)
    a = YOTOSelector(**FIT).fit(adata, labels)
    b = YOTOSelector(**FIT).fit(adata, shuffled)
    np.testing.assert_array_equal(a.scores_, b.scores_)
    assert a.score(adata, shuffled) == a.score(adata, labels)


def test_anndata_with_series_of_other_cell_names_is_an_error():
    X, y = make_data()
    adata = _adata(X)
    other = pd.Series(y, index=[f"cell{i}" for i in range(len(y))])
    with pytest.raises(ValueError, match="not adata.obs_names .*y.to_numpy"):
        YOTOSelector(**FIT).fit(adata, other)


def test_set_output_pandas_on_anndata_keeps_obs_names():
    X, y = make_data()
    adata = _adata(X)
    sel = YOTOSelector(**FIT).fit(adata, y).set_output(transform="pandas")
    out = sel.transform(adata)
    assert isinstance(out, pd.DataFrame)
    assert list(out.index) == list(adata.obs_names)
    assert list(out.columns) == list(sel.get_feature_names_out())
    np.testing.assert_allclose(out.to_numpy(), X[:, sel.get_support()], rtol=1e-6)


def test_model_without_names_warns_on_anndata_with_var_names():
    X, y = make_data()
    sel = YOTOSelector(**FIT).fit(X, y)
    adata = _adata(X[:, ::-1])  # genes in another order, names g0..g29
    with pytest.warns(UserWarning, match="fitted without feature names"):
        sel.predict(adata)
    plain = ad.AnnData(X.astype(np.float32))  # default var_names "0", "1", ...
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sel.predict(plain)


# ------------------------------------------------------------ caught early
@pytest.mark.parametrize("container", ["dense", "csr"])
def test_values_beyond_float32_are_rejected_before_training(container):
    X, y = make_data()
    X[3, 2] = 1e39
    X = sp.csr_matrix(X) if container == "csr" else X
    with pytest.raises(ValueError, match=r"values up to 1e\+39, beyond the float32"):
        YOTOSelector(**dict(FIT, standardize=False)).fit(X, y)


def test_backed_values_beyond_float32_are_rejected(tmp_path):
    X, y = make_data()
    X[5, 1] = -1e40
    a = ad.AnnData(X)  # float64 on disk
    a.write_h5ad(tmp_path / "big.h5ad")
    backed = ad.read_h5ad(tmp_path / "big.h5ad", backed="r")
    with pytest.raises(ValueError, match=r"1e\+40 \(rows 0-159\), beyond the float32"):
        YOTOSelector(**FIT).fit(backed, y)
    backed.file.close()


def test_anndata_with_a_list_of_labels_uses_them_as_labels():
    X, y = make_data()
    obs = pd.DataFrame(
        {"ct": np.array(["a", "b", "c"])[y]}, index=[f"c{i}" for i in range(len(y))]
    )
    adata = _adata(X, obs)
    labels = [str(v) for v in obs["ct"]]
    a = YOTOSelector(**FIT).fit(adata, labels)
    b = YOTOSelector(**FIT).fit(adata, "ct")
    np.testing.assert_array_equal(a.scores_, b.scores_)


def test_anndata_with_unknown_column_names_gives_a_short_message():
    X, y = make_data()
    obs = pd.DataFrame(
        {f"annotation_{i}": y for i in range(60)},
        index=[f"c{i}" for i in range(len(y))],
    )
    adata = _adata(X, obs)
    with pytest.raises(ValueError, match=r"\['ct', 'phase'\] not found") as info:
        YOTOSelector(**FIT).fit(adata, ["ct", "phase"])
    assert len(str(info.value)) < 400
