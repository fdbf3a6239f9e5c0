from __future__ import annotations

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import yoto_sklearn
from tests._scverse_data import FAST, make_adata
from yoto_sklearn.anndata import infer_task_type, obs_targets, select_genes


def _check_var(var: pd.DataFrame, k: int, key: str = "yoto") -> None:
    selected = var[f"{key}_selected"]
    assert selected.dtype == bool
    assert selected.sum() == k
    assert var[f"{key}_score"].dtype == np.float64
    ranks = var[f"{key}_rank"]
    assert sorted(ranks[selected]) == list(range(1, k + 1))
    # the selected genes are the best-scored ones
    if (~selected).any():
        assert (
            var[f"{key}_score"][selected].min() >= var[f"{key}_score"][~selected].max()
        )


def test_select_genes_dense_writes_var_and_uns(tmp_path):
    adata = make_adata()
    sel = select_genes(adata, ["cell_type", "score"], k=6, **FAST)
    assert isinstance(sel, yoto_sklearn.YOTOSelector)
    _check_var(adata.var, 6)
    info = adata.uns["yoto"]
    assert list(info["targets"]) == ["cell_type", "score"]
    assert list(info["task_types"]) == ["classification", "regression"]
    assert len(info["genes"]) == 6
    assert sorted(info["genes"]) == sorted(sel.get_feature_names_out())
    assert info["metrics"]["cell_type"]["metric"] == "accuracy"
    assert info["metrics"]["score"]["metric"] == "r2"
    assert info["metrics"]["score"]["n_labelled"] == 110
    assert info["params"]["k"] == 6
    # the results survive a round trip through .h5ad
    path = tmp_path / "a.h5ad"
    adata.write_h5ad(path)
    back = anndata.read_h5ad(path)
    _check_var(back.var, 6)
    assert list(back.uns["yoto"]["genes"]) == list(info["genes"])


def test_select_genes_sparse_stays_sparse():
    adata = make_adata(sparse=True)
    before = adata.X.copy()
    sel = select_genes(adata, "cell_type", k=5, **FAST)
    # adata.X is read directly: sparse, not densified, not copied
    assert sel.anndata_input_ == {"layer": None, "use_raw": False}
    assert sp.issparse(adata.X)
    assert (adata.X != before).nnz == 0
    _check_var(adata.var, 5)


def test_select_genes_layer():
    adata = make_adata(sparse=True)
    sel = select_genes(adata, "cell_type", k=5, layer="counts", key_added="L", **FAST)
    assert sel.anndata_input_ == {"layer": "counts", "use_raw": False}
    on_layer = anndata.AnnData(adata.layers["counts"], obs=adata.obs, var=adata.var)
    ref = yoto_sklearn.YOTOSelector(k=5, **FAST).fit(on_layer, "cell_type")
    np.testing.assert_array_equal(sel.predict(adata), ref.predict(on_layer))
    _check_var(adata.var, 5, key="L")
    assert "L" in adata.uns and adata.uns["L"]["layer"] == "counts"


def test_select_genes_raw_with_more_genes_than_adata():
    full = make_adata()
    full.raw = full.copy()
    adata = full[:, :4].copy()  # HVG-style subset: raw keeps all 40 genes
    with pytest.warns(UserWarning, match="in adata.raw but not in adata.var_names"):
        sel = select_genes(adata, "cell_type", k=8, use_raw=True, **FAST)
    assert sel.n_features_in_ == 40
    _check_var(adata.raw.var, 8)  # complete results for every raw gene
    panel = list(adata.uns["yoto"]["genes"])
    assert len(panel) == 8
    in_adata = [g for g in panel if g in adata.var_names]
    assert adata.var["yoto_selected"].sum() == len(in_adata)
    scores = pd.Series(np.asarray(sel.scores_), index=adata.raw.var_names)
    np.testing.assert_allclose(adata.var["yoto_score"], scores[adata.var_names])


def test_select_genes_raw_same_genes_no_warning(recwarn):
    adata = make_adata(sparse=True)
    adata.raw = adata.copy()
    select_genes(adata, "cell_type", k=5, use_raw=True, **FAST)
    assert not [w for w in recwarn if "adata.raw" in str(w.message)]
    _check_var(adata.var, 5)
    assert sp.issparse(adata.raw.X)


def test_select_genes_missing_labels_are_masked():
    adata = make_adata()
    labels = adata.obs["batch"].to_numpy(dtype=object)
    labels[:7] = None
    labels[7:9] = np.nan
    adata.obs["batch"] = labels
    adata.obs["cell_type"] = adata.obs["cell_type"].cat.add_categories([])
    adata.obs.loc[adata.obs_names[-5:], "cell_type"] = np.nan
    adata.obs["nullable"] = pd.array(
        [None if i % 4 == 0 else i + 0.5 for i in range(adata.n_obs)], dtype="Float64"
    )
    targets = ["cell_type", "batch", "score", "nullable"]
    y, task_types = obs_targets(adata.obs, targets)  # what select_genes fits on
    select_genes(adata, targets, k=5, **FAST)
    assert list(y.columns) == ["cell_type", "batch", "score", "nullable"]
    assert task_types == [
        "classification",
        "classification",
        "regression",
        "regression",
    ]
    assert y["batch"].isna().sum() == 9
    assert all(v is None for v in y["batch"][:9])
    assert y["cell_type"].isna().sum() == 5
    assert y["score"].dtype == np.float64 and y["score"].isna().sum() == 10
    assert y["nullable"].dtype == np.float64 and y["nullable"].isna().sum() == 30
    metrics = adata.uns["yoto"]["metrics"]
    assert metrics["batch"]["n_labelled"] == adata.n_obs - 9
    assert metrics["nullable"]["n_labelled"] == adata.n_obs - 30


def test_select_genes_copy_leaves_input_untouched():
    adata = make_adata()
    result = select_genes(adata, "cell_type", k=5, copy=True, **FAST)
    assert isinstance(result, tuple)
    copied, sel = result
    assert isinstance(copied, anndata.AnnData) and copied is not adata
    assert "yoto_selected" not in adata.var and "yoto" not in adata.uns
    _check_var(copied.var, 5)
    assert sorted(copied.uns["yoto"]["genes"]) == sorted(sel.get_feature_names_out())


def test_select_genes_task_types_override():
    adata = make_adata()
    # whole numbers with <= 100 values -> classification, as in YOTOSelector
    adata.obs["level"] = np.arange(adata.n_obs) % 3
    sel = select_genes(adata, ["level", "flag"], k=5, **FAST)
    assert sel.task_types_ == ["classification", "classification"]
    assert obs_targets(adata.obs, ["level", "flag"])[1] == sel.task_types_
    sel = select_genes(
        adata, ["level", "flag"], k=5, task_types={"level": "regression"}, **FAST
    )
    assert sel.task_types_ == ["regression", "classification"]
    with pytest.raises(ValueError, match="task_types names unknown tasks"):
        obs_targets(adata.obs, ["level"], task_types={"levle": "regression"})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"targets": "nope"}, r"unknown obs column\(s\) \['nope'\]"),
        ({"targets": []}, "targets is empty"),
        ({"targets": "cell_type", "layer": "missing"}, "layer 'missing' not found"),
        ({"targets": "cell_type", "use_raw": True}, "has no .raw"),
        (
            {"targets": "cell_type", "use_raw": True, "layer": "counts"},
            "not both",
        ),
        ({"targets": ["batch", "batch"]}, "more than once"),
        ({"targets": "empty"}, "'empty' has no labelled cell"),
        ({"targets": "cell_type", "task_types": ["oops"]}, "task type 'oops'"),
    ],
)
def test_select_genes_bad_input(kwargs, match):
    adata = make_adata(n_cells=20, n_genes=8)
    adata.obs["empty"] = np.nan
    with pytest.raises(ValueError, match=match):
        select_genes(adata, k=3, **kwargs)


def test_select_genes_rejects_non_anndata():
    with pytest.raises(TypeError, match="'adata' parameter of select_genes must be"):
        select_genes(np.zeros((5, 3)), "a")


def test_infer_task_type():
    obs = pd.DataFrame(
        {
            "cat": pd.Categorical(["a", "b"]),
            "str": ["a", "b"],
            "bool": [True, False],
            "int": [1, 2],
            "count": np.arange(2) * 1000 + np.arange(2),
            "float": [0.5, 1.5],
            "date": pd.to_datetime(["2020-01-01", "2020-01-02"]),
        }
    )
    kinds = {c: infer_task_type(obs[c]) for c in obs.columns if c != "date"}
    assert kinds == {
        "cat": "classification",
        "str": "classification",
        "bool": "classification",
        "int": "classification",
        "count": "classification",  # 2 distinct whole numbers
        "float": "regression",
    }
    many = pd.Series(np.arange(150), name="n_genes")  # > 100 distinct: a quantity
    assert infer_task_type(many) == "regression"
    with pytest.raises(TypeError, match="'date' has dtype datetime64"):
        infer_task_type(obs["date"])


def test_obs_targets_rejects_inf():
    obs = pd.DataFrame({"x": [1.0, np.inf, 2.0]})
    with pytest.raises(ValueError, match="'x' contains infinite values"):
        obs_targets(obs, "x")


def test_select_genes_k_larger_than_genes_warns_and_keeps_all():
    adata = make_adata(n_genes=8)
    with pytest.warns(UserWarning, match="k=20 is greater than n_features=8"):
        sel = select_genes(adata, "cell_type", k=20, **FAST)
    assert sel.k_ == 8
    _check_var(adata.var, 8)


def test_load_pbmc68k_reduced_without_scanpy_names_the_extra(monkeypatch):
    import sys

    from yoto_sklearn import datasets

    # importlib.util.find_spec answers None for a module set to None in sys.modules
    monkeypatch.setitem(sys.modules, "scanpy", None)
    with pytest.raises(ImportError, match=r'pip install "yoto-sklearn\[demo\]"'):
        datasets.load_pbmc68k_reduced()


def test_load_pbmc68k_reduced():
    import importlib.util

    if importlib.util.find_spec("scanpy") is None:
        pytest.skip("the data ships with scanpy")
    from yoto_sklearn.datasets import load_pbmc68k_reduced

    adata = load_pbmc68k_reduced()
    assert adata.shape == (700, 765) and adata.raw.shape == (700, 765)
    assert sp.issparse(adata.raw.X)
    assert {"bulk_labels", "phase", "S_score", "G2M_score"} <= set(adata.obs.columns)


def test_one_task_type_rule_for_every_door():
    """YOTOSelector.fit(adata, col), select_genes and the CLI agree on every dtype."""
    from yoto_sklearn import YOTOSelector

    adata = make_adata()
    n = adata.n_obs
    adata.obs["cluster"] = np.arange(n) % 4  # int, few values
    adata.obs["n_genes"] = np.arange(n) * 7  # int, 120 values: a quantity
    adata.obs["stage"] = (np.arange(n) % 3).astype(float)  # whole floats
    columns = ["cluster", "n_genes", "stage", "score", "flag", "batch", "cell_type"]
    expected = ["classification", "regression", "classification", "regression"]
    expected += ["classification"] * 3
    with pytest.warns(UserWarning, match="'n_genes' holds whole numbers with more"):
        sel = select_genes(adata, columns, k=5, **FAST)
    assert sel.task_types_ == expected  # select_genes and the CLI
    with pytest.warns(UserWarning, match="'n_genes' holds whole numbers"):
        sel = YOTOSelector(k=5, **FAST).fit(adata, columns)  # task_types=None
    assert sel.task_types_ == expected
    with pytest.warns(UserWarning, match="'n_genes' holds whole numbers"):
        assert [infer_task_type(adata.obs[c]) for c in columns] == expected


def test_fit_on_a_view_of_a_sparse_anndata():
    """adata[cells] keeps X as an anndata view class, which is in memory, not backed."""
    from yoto_sklearn import YOTOSelector

    adata = make_adata(sparse=True)
    view = adata[: adata.n_obs // 2]
    assert view.is_view
    sel = YOTOSelector(k=4, **FAST).fit(view, "cell_type")
    expected = YOTOSelector(k=4, **FAST).fit(view.copy(), "cell_type")
    np.testing.assert_array_equal(sel.support_, expected.support_)
    np.testing.assert_array_equal(sel.predict(view), expected.predict(view))
