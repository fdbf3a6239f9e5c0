"""Fit and predict from a real TileDB-SOMA experiment built in tmp_path (issue 18)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.model_selection import GridSearchCV

from yoto_sklearn import YOTOSelector

soma_io = pytest.importorskip("tiledbsoma.io")
anndata = pytest.importorskip("anndata")

from yoto_sklearn.soma import SomaSource, write_panel_layer  # noqa: E402

FIT = dict(k=3, max_iter=6, n_threads=1, random_state=0, device="cpu")


def _adata(n=400, g=30, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = sp.random(n, g, density=0.3, format="csr", random_state=seed, dtype=np.float32)
    marks = sp.csr_matrix((np.full(n, 3.0, np.float32), (np.arange(n), y)), (n, g))
    state = np.where(rng.random(n) < 0.2, "unknown", np.array(["x", "y"])[y % 2])
    obs = pd.DataFrame(
        {
            "cell_type": np.array(["a", "b", "c"])[y],
            "state": state,
            "tissue": np.where(np.arange(n) % 4 == 0, "lung", "blood"),
        },
        index=[f"c{i}" for i in range(n)],
    )
    var = pd.DataFrame(
        {"feature_name": [f"G{i}" for i in range(g)]},
        index=[f"ENSG{i:05d}" for i in range(g)],
    )
    return anndata.AnnData(X=(X + marks).tocsr(), obs=obs, var=var)


@pytest.fixture(scope="module")
def atlas(tmp_path_factory):
    """The same cells as a SOMA experiment and as an h5ad file."""
    root = tmp_path_factory.mktemp("atlas")
    adata = _adata()
    uri = str(root / "soma")
    soma_io.from_anndata(uri, adata, measurement_name="RNA")
    path = root / "cells.h5ad"
    adata.write_h5ad(path)
    return uri, path, adata


def _fingerprint(sel, X):
    return sel.support_, sel.scores_, sel.predict_proba(X)


def test_soma_fit_equals_the_backed_h5ad_fit(atlas):
    uri, path, _ = atlas
    source = SomaSource(uri)
    assert (source.n_obs, source.n_vars) == (400, 30)
    assert source.var_names[0] == "G0"  # named by feature_name
    a = YOTOSelector(**FIT).fit(source, "cell_type")
    backed = anndata.read_h5ad(path, backed="r")
    b = YOTOSelector(**FIT).fit(backed, "cell_type")
    # same values, same chunk-wise order: bit-identical
    for u, v in zip(_fingerprint(a, source), _fingerprint(b, backed), strict=True):
        np.testing.assert_array_equal(u, v)
    # genes named by var's feature_name (the AnnData's var_names are its ids)
    names = backed.var["feature_name"].to_numpy()[b.support_]
    assert list(a.get_feature_names_out()) == list(names)


def test_unknown_labels_are_missing_and_multi_task_works(atlas):
    uri, _, adata = atlas
    source = SomaSource(uri)
    state = source.obs["state"]
    assert state.isna().sum() == (adata.obs["state"] == "unknown").sum() > 0
    sel = YOTOSelector(**FIT).fit(source, ["cell_type", "state"])
    assert sel.task_names_ == ["cell_type", "state"]
    frame = sel.predict_frame(source)
    assert list(frame.columns) == ["cell_type", "state"] and len(frame) == 400
    assert "unknown" not in set(frame["state"])
    kept = SomaSource(uri, missing_values=())
    assert kept.obs["state"].isna().sum() == 0


def test_value_filters_and_gene_subsets_are_honoured(atlas):
    uri, _, adata = atlas
    lung = SomaSource(uri, obs_value_filter="tissue == 'lung'")
    assert lung.n_obs == int((adata.obs["tissue"] == "lung").sum())
    assert set(lung.obs["tissue"]) == {"lung"}
    some = SomaSource(uri, var_value_filter="feature_name in ['G1', 'G4', 'G9']")
    assert list(some.var_names) == ["G1", "G4", "G9"]
    block = next(some.chunks())[1].toarray()
    np.testing.assert_array_equal(block, adata.X[:, [1, 4, 9]].toarray())
    ordered = SomaSource(uri, genes=["G9", "G1"])
    np.testing.assert_array_equal(
        next(ordered.chunks())[1].toarray(), adata.X[:, [9, 1]].toarray()
    )


def test_prediction_reads_only_the_panel_columns(atlas):
    uri, _, adata = atlas
    adata = adata.copy()
    adata.var_names = adata.var["feature_name"].to_numpy()
    sel = YOTOSelector(**FIT).fit(SomaSource(uri), "cell_type")
    fresh = SomaSource(uri)
    proba = sel.predict_proba(fresh)
    assert sorted(fresh.columns_read) == sorted(sel.support_.tolist())
    np.testing.assert_allclose(proba, sel.predict_proba(adata), rtol=0, atol=1e-6)
    # a query with other genes: the model's genes are taken by name
    out = next(g for g in adata.var_names if g not in set(sel.get_feature_names_out()))
    other = SomaSource(uri, var_value_filter=f"feature_name != '{out}'")
    assert other.n_vars == 29
    np.testing.assert_array_equal(sel.predict(other), sel.predict(adata))
    assert sorted(other.with_genes(list(sel.feature_names_in_)).var_names) == sorted(
        adata.var_names
    )


class _LoggedSoma(SomaSource):
    """Logs every storage read as (cells, var joinids), across copies."""

    log: list = []

    def _entries(self, rows, var_ids, layer=None):
        _LoggedSoma.log.append((len(rows), tuple(sorted(var_ids.tolist()))))
        return super()._entries(rows, var_ids, layer)


def test_refinement_reads_only_the_panel_columns(atlas):
    """After selection, the panel columns of every cell come from storage alone:
    a pass over the rows would read every gene (issue 18, item 4)."""
    uri, _, adata = atlas
    _LoggedSoma.log = []
    sel = YOTOSelector(**dict(FIT, max_iter=8)).fit(_LoggedSoma(uri), "cell_type")
    assert sel.history_.selection_epochs < sel.n_iter_  # refinement ran
    panel = tuple(sorted(sel.support_.tolist()))
    narrow = [(n, cols) for n, cols in _LoggedSoma.log if len(cols) < adata.n_vars]
    assert {cols for _, cols in narrow} == {panel}
    assert sum(n for n, _ in narrow) == adata.n_obs  # every cell, once


def test_narrow_gene_tiles_give_longer_panel_blocks_and_the_same_predictions(
    atlas, tmp_path
):
    """An X array written with narrow gene tiles: a panel touches few of them, so
    a panel block covers more cells (one read decompresses about a row chunk);
    predictions are those of the default tiling."""
    uri, _, adata = atlas
    narrow = str(tmp_path / "narrow")
    dims = {"soma_dim_0": {"tile": 64}, "soma_dim_1": {"tile": 2}}
    config = {"tiledb": {"create": {"capacity": 64, "dims": dims}}}
    soma_io.from_anndata(narrow, adata, measurement_name="RNA", platform_config=config)
    wide, thin = SomaSource(uri, chunk_rows=50), SomaSource(narrow, chunk_rows=50)
    cols = np.array([3, 4, 20])  # gene tiles 1, 2 and 10 of 15
    assert wide.panel_rows(cols) == 50  # 30 genes in one default tile: a row chunk
    assert thin.panel_rows(cols) == 250  # 3 of 15 tiles: 5 chunks' worth of cells
    sel = YOTOSelector(**FIT).fit(wide, "cell_type")
    # the same values in blocks of another length: float64 products may differ
    # in the last bit (1e-16 here) with the block shape
    np.testing.assert_allclose(
        sel.predict_proba(thin), sel.predict_proba(wide), rtol=0, atol=1e-12
    )
    np.testing.assert_array_equal(sel.predict(thin), sel.predict(wide))
    blocks = list(thin.panel_chunks(cols))
    assert [len(b) for b in blocks] == [250, 150]
    np.testing.assert_array_equal(
        np.vstack(blocks), adata.X[:, cols].toarray().astype(np.float64)
    )


def test_raw_counts_are_normalised_on_the_fly(tmp_path):
    """Census-style raw counts: the SOMA fit equals the backed-h5ad fit, bit for bit."""
    adata = _adata(n=200)
    rng = np.random.default_rng(1)
    adata.X = sp.csr_matrix(rng.poisson(adata.X.toarray() * 4).astype(np.float32))
    uri = str(tmp_path / "counts")
    soma_io.from_anndata(uri, adata, measurement_name="RNA")
    path = tmp_path / "counts.h5ad"
    adata.write_h5ad(path)
    backed = anndata.read_h5ad(path, backed="r")
    kw = dict(FIT, normalize_counts=True)
    a = YOTOSelector(**kw).fit(SomaSource(uri), "cell_type")
    b = YOTOSelector(**kw).fit(backed, "cell_type")
    fresh = SomaSource(uri)
    for u, v in zip(_fingerprint(a, fresh), _fingerprint(b, backed), strict=True):
        np.testing.assert_array_equal(u, v)
    # library sizes need every gene of a cell: one pass over all columns
    assert len(fresh.columns_read) == adata.n_vars


def test_primary_data_only_by_default(tmp_path):
    adata = _adata(n=120)
    adata.obs["is_primary_data"] = np.arange(120) % 3 != 0
    uri = str(tmp_path / "census_like")
    soma_io.from_anndata(uri, adata, measurement_name="RNA")
    assert SomaSource(uri).n_obs == 80
    assert SomaSource(uri, primary_only=False).n_obs == 120
    configured = SomaSource(uri, tiledb_config={"sm.compute_concurrency_level": "1"})
    assert pickle.loads(pickle.dumps(configured)).n_obs == 80


def test_pickles_and_runs_in_grid_search_with_two_workers(atlas):
    uri, _, _ = atlas
    source = SomaSource(uri)
    again = pickle.loads(pickle.dumps(source))
    assert again.n_obs == source.n_obs and list(again.obs["cell_type"][:5]) == list(
        source.obs["cell_type"][:5]
    )
    y = source.obs["cell_type"].to_numpy()
    search = GridSearchCV(
        YOTOSelector(**dict(FIT, max_iter=2)), {"k": [2, 3]}, cv=2, n_jobs=2
    ).fit(source, y)
    assert search.best_params_["k"] in (2, 3)
    sub = source[np.array([5, 1, 3])]
    np.testing.assert_array_equal(
        sub.obs["cell_type"].to_numpy(), y[[5, 1, 3]]
    )  # fmt: skip
    assert list(sub.obs_names) == [str(i) for i in source.obs_ids[[5, 1, 3]]]
    # the cells' names are not pickled (every row range a joblib worker reads
    # pickles the source; 10^6 names took 0.48 s), but rebuilt where needed
    assert len(source.obs_names) == source.n_obs  # built here
    shipped = pickle.loads(pickle.dumps(source))
    assert shipped.__dict__["_obs_names"] is None  # not shipped to a worker
    assert shipped.obs_names.equals(source.obs_names)  # rebuilt there on use
    np.testing.assert_array_equal(
        next(sub.chunks())[1].toarray(), next(source.chunks())[1].toarray()[[5, 1, 3]]
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(uri="{missing}"), "not a readable SOMA experiment"),
        (dict(uri="{h5ad}"), "not a readable SOMA experiment"),
        (dict(measurement="ATAC"), "Measurement 'ATAC' not in"),
        (dict(X_layer="raw"), "X layer 'raw' not in"),
        (dict(panel_layer="panel"), "X layer 'panel' not in"),
        (dict(obs_value_filter="tissue == 'brain'"), "selects 0 cells"),
        (dict(obs_value_filter="tissue ==="), "value filter failed"),
        (dict(genes=["G1", "NOPE"]), "not in var"),
        (dict(gene_column="symbol"), "gene_column 'symbol' is not a var column"),
    ],
)
def test_bad_queries_get_one_clear_error(atlas, tmp_path, kwargs, message):
    uri, path, _ = atlas
    kwargs = dict(kwargs)
    given = kwargs.pop("uri", uri).format(missing=tmp_path / "nothing", h5ad=path)
    with pytest.raises(ValueError, match=message):
        SomaSource(given, **kwargs)


def test_unknown_target_column_is_named(atlas):
    uri, _, _ = atlas
    with pytest.raises(ValueError, match="not found"):
        YOTOSelector(**FIT).fit(SomaSource(uri), "disease")


def test_parallel_passes_equal_the_serial_ones(atlas):
    from yoto_sklearn.sources import scan_columns

    uri, _, _ = atlas
    source = SomaSource(uri, chunk_rows=70)
    serial = scan_columns(source, None, all_rows_mean=True)
    parallel = scan_columns(source, None, all_rows_mean=True, n_jobs=2)
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a, b)
    a = YOTOSelector(**FIT).fit(source, "cell_type")
    b = YOTOSelector(n_jobs=2, **FIT).fit(source, "cell_type")
    for u, v in zip(_fingerprint(a, source), _fingerprint(b, source), strict=True):
        np.testing.assert_array_equal(u, v)


def test_genes_a_dataset_never_measured_are_left_out(tmp_path):
    """Census presence matrix: only genes measured in every dataset of the slice."""
    adata = _adata(n=200)
    adata.obs["dataset_id"] = np.where(np.arange(200) < 120, "d1", "d2")
    unmeasured = [3, 7]  # d2 never measured G3 and G7: stored as absent (reads 0)
    X = adata.X.tolil()
    X[120:, unmeasured] = 0
    adata.X = X.tocsr()
    uri = str(tmp_path / "two_datasets")
    soma_io.from_anndata(uri, adata, measurement_name="RNA")
    presence = np.ones((2, adata.n_vars), dtype=bool)
    presence[1, unmeasured] = False
    kw = dict(presence=presence, presence_datasets=["d1", "d2"])
    with pytest.warns(UserWarning, match="2 of 30 genes were not measured"):
        both = SomaSource(uri, **kw)
    assert both.n_vars == 28 and both.genes_not_measured == ["G3", "G7"]
    assert not {"G3", "G7"} & set(both.var_names)
    sel = YOTOSelector(**FIT).fit(both, "cell_type")
    assert not {"G3", "G7"} & set(sel.get_feature_names_out())
    # cells of d1 only: every gene was measured there
    d1 = SomaSource(uri, obs_value_filter="dataset_id == 'd1'", **kw)
    assert d1.n_vars == 30 and d1.genes_not_measured == []
    # the fitted genes, found again with the same presence
    assert list(both.with_genes(list(sel.feature_names_in_)).var_names) == list(
        sel.feature_names_in_
    )
    with pytest.raises(ValueError, match="not measured in every dataset.*G3"):
        SomaSource(uri, genes=["G1", "G3"], **kw)
    with pytest.raises(ValueError, match="not rows of presence"):
        SomaSource(uri, presence=presence[:1], presence_datasets=["d1"])
    with pytest.raises(ValueError, match="give presence_datasets"):
        SomaSource(uri, presence=presence)
    with pytest.raises(ValueError, match="dataset_column 'batch'"):
        SomaSource(uri, dataset_column="batch", **kw)


def test_binarize_acts_on_a_soma_source(atlas):
    """Detection (binarize) read from SOMA equals detection from the h5ad.

    Before this test the threshold was silently ignored for SOMA reads: the panel
    and the predictions were those of the raw values.
    """
    uri, path, _ = atlas
    kw = dict(FIT, binarize=0.5)
    a = YOTOSelector(**kw).fit(SomaSource(uri), "cell_type")
    backed = anndata.read_h5ad(path, backed="r")
    b = YOTOSelector(**kw).fit(backed, "cell_type")
    for u, v in zip(
        _fingerprint(a, SomaSource(uri)), _fingerprint(b, backed), strict=True
    ):
        np.testing.assert_array_equal(u, v)
    raw = YOTOSelector(**FIT).fit(SomaSource(uri), "cell_type")
    assert not np.array_equal(raw.scores_, a.scores_)


def test_panel_layer_holds_the_same_values_and_serves_the_panel_reads(tmp_path):
    """write_panel_layer copies X chunk by chunk into narrow gene tiles; a source
    with panel_layer gives the fit and the predictions of the plain source (the
    same values, in longer panel blocks) and reads its panels from that layer."""
    import pyarrow as pa
    import tiledbsoma

    adata = _adata(n=300)
    uri = str(tmp_path / "atlas")
    soma_io.from_anndata(uri, adata, measurement_name="RNA")
    assert write_panel_layer(uri, chunk_rows=70, genes_per_tile=2) == "panel"
    with tiledbsoma.Experiment.open(uri) as exp:
        X = exp.ms["RNA"].X
        tables = {n: X[n].read().tables().concat() for n in ("data", "panel")}
    as_csr = {
        n: sp.csr_matrix(
            (
                t.column("soma_data").to_numpy(),
                (t.column("soma_dim_0").to_numpy(), t.column("soma_dim_1").to_numpy()),
            ),
            shape=adata.shape,
        )  # fmt: skip
        for n, t in tables.items()
    }
    assert (as_csr["panel"] != as_csr["data"]).nnz == 0
    assert as_csr["panel"].nnz == adata.X.nnz
    plain = SomaSource(uri, chunk_rows=50)
    layered = SomaSource(uri, chunk_rows=50, panel_layer="panel")
    cols = np.array([3, 4, 20])  # 3 of 15 two-gene tiles: blocks of 5 chunks' cells
    assert (plain.panel_rows(cols), layered.panel_rows(cols)) == (50, 250)
    a = YOTOSelector(**FIT).fit(plain, "cell_type")
    b = YOTOSelector(**FIT).fit(layered, "cell_type")
    np.testing.assert_array_equal(a.support_, b.support_)
    np.testing.assert_allclose(
        b.predict_proba(layered), a.predict_proba(plain), rtol=0, atol=1e-12
    )
    # the panel reads go to the panel layer: a layer of other values moves them
    with tiledbsoma.Experiment.open(uri, "w") as exp:
        other = exp.ms["RNA"].X.add_new_sparse_ndarray(
            "doubled", type=pa.float32(), shape=adata.shape
        )
        t = tables["data"]
        # what a finished write_panel_layer leaves; a copy of other values
        other.metadata["yoto_sklearn.panel_layer_of"] = "data"
        other.write(
            pa.table(
                {
                    "soma_dim_0": t.column("soma_dim_0"),
                    "soma_dim_1": t.column("soma_dim_1"),
                    "soma_data": pa.compute.multiply(t.column("soma_data"), 2.0),
                }
            )
        )
    doubled = SomaSource(uri, chunk_rows=50, panel_layer="doubled")
    assert not np.allclose(a.predict_proba(doubled), a.predict_proba(plain))


def test_panel_layer_bad_input_gets_one_clear_error(tmp_path):
    adata = _adata(n=100)
    uri = str(tmp_path / "atlas")
    soma_io.from_anndata(uri, adata, measurement_name="RNA")
    write_panel_layer(uri)
    with pytest.raises(ValueError, match="already exists"):
        write_panel_layer(uri)
    with pytest.raises(ValueError, match="X layer 'raw' not in"):
        write_panel_layer(uri, "copy", X_layer="raw")
    with pytest.raises(TypeError, match="genes_per_tile must be a positive int"):
        write_panel_layer(uri, "copy", genes_per_tile=2.5)
    with pytest.raises(ValueError, match="capacity must be a positive int"):
        write_panel_layer(uri, "copy", capacity=0)
    import pyarrow as pa
    import tiledbsoma

    with tiledbsoma.Experiment.open(uri, "w") as exp:
        exp.ms["RNA"].X.add_new_sparse_ndarray(
            "small", type=pa.float32(), shape=(100, 5)
        )
        exp.ms["RNA"].X.add_new_sparse_ndarray(
            "unmarked", type=pa.float32(), shape=adata.shape
        )  # an interrupted copy: created, never marked finished
    with pytest.raises(ValueError, match="holds the same cells and genes"):
        SomaSource(uri, panel_layer="small")
    with pytest.raises(ValueError, match="not a finished copy of X layer 'data'"):
        SomaSource(uri, panel_layer="unmarked")
    with pytest.raises(TypeError, match="layer must be a non-empty string"):
        write_panel_layer(uri, "")


def test_a_local_experiment_reads_only_the_tiles_a_query_needs(tmp_path):
    """TileDB merges the byte ranges of a query's tiles into reads of >= 20 MB
    (gaps < 500 KB) for object stores; from a local folder SomaSource reads the
    needed tiles only (same values, a fraction of the bytes); a user's keys win,
    and a remote URI keeps TileDB's settings."""
    import json

    import tiledbsoma

    from yoto_sklearn._tiledb import LOCAL_READS, read_config

    adata = _adata(n=3000, g=400)
    uri = str(tmp_path / "atlas")
    soma_io.from_anndata(uri, adata, measurement_name="RNA")
    write_panel_layer(uri, genes_per_tile=2, cells_per_tile=1024, capacity=256)
    cols = np.array([5, 100, 230, 390])

    def panel_read(config):
        source = SomaSource(uri, panel_layer="panel", tiledb_config=config)
        tiledbsoma.tiledbsoma_stats_reset()
        tiledbsoma.tiledbsoma_stats_enable()
        try:
            panel = np.vstack(list(source.panel_chunks(cols)))
            stats = json.loads(tiledbsoma.tiledbsoma_stats_json())
        finally:
            tiledbsoma.tiledbsoma_stats_disable()
        read = sum(
            s.get("counters", {}).get("Context.VFS.read_byte_num", 0) for s in stats
        )  # 0 if the stats lack it: then the comparison below fails
        return panel, read

    tiledb_defaults = {"vfs.min_batch_size": "20971520", "vfs.min_batch_gap": "512000"}
    local, local_bytes = panel_read(None)
    merged, merged_bytes = panel_read(tiledb_defaults)
    np.testing.assert_array_equal(local, adata.X[:, cols].toarray())
    np.testing.assert_array_equal(merged, local)
    assert 0 < 5 * local_bytes < merged_bytes
    source = SomaSource(uri)
    with source._open() as a, source._open() as b:
        assert a.context is b.context  # made once, not per block
        assert a.context.tiledb_config["vfs.min_batch_gap"] == "0"
    assert read_config(uri, {"vfs.min_batch_gap": "7"}) == LOCAL_READS | {
        "vfs.min_batch_gap": "7"
    }
    remote = {"vfs.s3.region": "us-west-2"}
    assert read_config("s3://bucket/census", remote) == remote
    assert read_config("s3://bucket/census", None) is None
