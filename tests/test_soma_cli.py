"""``yoto-sklearn fit`` / ``predict`` on a TileDB-SOMA experiment folder (issue 18)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from yoto_sklearn import YOTOSelector
from yoto_sklearn.cli import main

soma_io = pytest.importorskip("tiledbsoma.io")
anndata = pytest.importorskip("anndata")

from yoto_sklearn.soma import SomaSource, write_panel_layer  # noqa: E402

FAST = ["--max-iter", "4", "--set", "hidden_layer_sizes=(16,)", "--quiet"]


@pytest.fixture(scope="module")
def counts(tmp_path_factory):
    """Raw counts with labels, as a SOMA experiment and as an h5ad file."""
    root = tmp_path_factory.mktemp("soma_cli")
    rng = np.random.default_rng(0)
    n, g = 300, 25
    y = rng.integers(0, 3, n)
    rates = rng.gamma(1.0, 1.0, (3, g)) * 4
    X = rng.poisson(rates[y] * rng.uniform(0.5, 2.0, (n, 1))).astype(np.float32)
    obs = pd.DataFrame(
        {
            "cell_type": np.array(["a", "b", "c"])[y],
            "tissue": np.where(np.arange(n) % 3 == 0, "lung", "blood"),
        },
        index=[f"c{i}" for i in range(n)],
    )
    var = pd.DataFrame(
        {"feature_name": [f"G{i}" for i in range(g)]}, index=[f"G{i}" for i in range(g)]
    )
    adata = anndata.AnnData(sp.csr_matrix(X), obs=obs, var=var)
    uri = str(root / "atlas")
    soma_io.from_anndata(uri, adata, measurement_name="RNA")
    path = root / "cells.h5ad"
    adata.write_h5ad(path)
    return uri, path, adata


def test_fit_and_predict_on_a_soma_folder_with_filters(counts, tmp_path, capsys):
    uri, _, adata = counts
    out = tmp_path / "run"
    args = ["fit", uri, "-t", "cell_type", "--k", "4", "--out", str(out), *FAST]
    args += ["--test-size", "0.25"]
    blood = "tissue == 'blood'"
    rc = main([*args, "--obs-filter", blood, "--var-filter", "feature_name != 'G0'"])
    assert rc == 0
    record = json.loads((out / "metrics.json").read_text())
    n_blood = int((adata.obs["tissue"] == "blood").sum())
    assert record["data"]["n_cells"] == n_blood  # the filter, honoured
    assert record["data"]["n_genes"] == 24  # G0 filtered out
    assert record["data"]["n_train"] + record["data"]["n_test"] == n_blood
    assert "test_metrics" in record and record["plots"] == []
    panel = pd.read_csv(out / "panel.csv")["gene"].tolist()
    assert len(panel) == 4 and "G0" not in panel
    model = YOTOSelector.load(out / "model.safetensors")
    assert model.n_features_in_ == 24

    pred = tmp_path / "pred.csv"
    lung = "tissue == 'lung'"
    argv = ["predict", str(out), uri, "--out", str(pred), "--obs-filter", lung, "-q"]
    assert main(argv) == 0
    table = pd.read_csv(pred, index_col=0)
    assert table.index.name == "soma_joinid"
    assert len(table) == int((adata.obs["tissue"] == "lung").sum())
    # the same as the model on the same cells read from an h5ad
    cells = adata[(adata.obs["tissue"] == "lung").to_numpy()]
    expected = model.predict(cells[:, list(model.feature_names_in_)])
    np.testing.assert_array_equal(table["cell_type"].to_numpy(), expected)
    # the panel read from a layer tiled for it: the same predictions
    write_panel_layer(uri, "panel_cli")
    argv[4] = str(tmp_path / "pred_layer.csv")
    assert main([*argv, "--panel-layer", "panel_cli"]) == 0
    layered = pd.read_csv(argv[4], index_col=0)
    pd.testing.assert_frame_equal(layered, table)


def test_normalize_counts_through_the_command_line(counts, tmp_path):
    uri, path, adata = counts
    out = tmp_path / "run"
    argv = ["fit", str(path), "-t", "cell_type", "--k", "4", "--out", str(out)]
    assert main([*argv, "--normalize-counts", *FAST]) == 0
    model = YOTOSelector.load(out / "model.safetensors")
    assert model.count_target_sum_ == 1e4
    # predict reads every gene of a cell for its library size, not only the panel
    for data, name in ((path, "h5ad.csv"), (uri, "soma.csv")):
        pred = tmp_path / name
        assert main(["predict", str(out), str(data), "--out", str(pred), "-q"]) == 0
        table = pd.read_csv(pred, index_col=0)
        np.testing.assert_array_equal(table["cell_type"], model.predict(adata))
    # a bare --normalize-counts before the data path takes no value
    argv = ["fit", "--normalize-counts", str(path), "-t", "cell_type", "--k", "4"]
    assert main([*argv, "--out", str(tmp_path / "r2"), *FAST]) == 0
    bad = ["--out", str(tmp_path / "r3"), "--normalize-counts", "0", *FAST]
    assert main(["fit", str(path), "-t", "cell_type", "--k", "4", *bad]) == 1


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--obs-filter", "tissue = = 'x'"], "value filter"),
        (["--obs-filter", "tissue == 'brain'"], "selects 0 cells"),
        (["--layer", "counts"], "X layer 'counts'"),
        (["--panel-layer", "tiles"], "X layer 'tiles'"),
        (["--measurement", "ATAC"], "Measurement 'ATAC'"),
        (["--use-raw"], "no .raw"),
        (["--stability-runs", "2"], "--stability-runs is not available"),
        (["--tiledb-config", "vfs.min_batch_gap=abc"], "Failed to convert"),
    ],
)
def test_bad_soma_options_get_one_line(counts, tmp_path, capsys, extra, message):
    uri, _, _ = counts
    argv = ["fit", uri, "-t", "cell_type", "--k", "3", "--out", str(tmp_path / "o")]
    assert main([*argv, *extra, *FAST]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize(
    "option", [["--obs-filter", "tissue == 'lung'"], ["--tiledb-config", "a=b"]]
)
def test_soma_options_on_a_file_are_refused(counts, tmp_path, capsys, option):
    _, path, _ = counts
    argv = ["fit", str(path), "-t", "cell_type", "--k", "3", "--out", str(tmp_path)]
    assert main([*argv, *option, *FAST]) == 1
    assert "for a TileDB-SOMA experiment" in capsys.readouterr().err


def test_tiledb_config_reaches_the_reads_of_fit_and_predict(counts, tmp_path, capsys):
    """--tiledb-config KEY=VALUE (repeatable) is the source's tiledb_config: the
    same run as without it (these keys change how bytes are fetched, not what),
    and a value TileDB cannot take fails the run (above)."""
    uri, _, _ = counts
    merged = ["--tiledb-config", "vfs.min_batch_size=20971520"]
    merged += ["--tiledb-config", "vfs.min_batch_gap=512000"]
    runs = {}
    for name, extra in (("plain", []), ("merged", merged)):
        out = tmp_path / name
        argv = ["fit", uri, "-t", "cell_type", "--k", "3", "--out", str(out), *FAST]
        assert main([*argv, "--seed", "0", *extra]) == 0
        pred = tmp_path / f"{name}.csv"
        argv = ["predict", str(out / "model.safetensors"), uri, "--out", str(pred)]
        assert main([*argv, "--quiet", *extra]) == 0
        runs[name] = (json.loads((out / "metrics.json").read_text()), pred)
    assert runs["plain"][0]["panel"] == runs["merged"][0]["panel"]
    with pytest.raises(SystemExit) as info:  # argparse: usage and exit status 2
        main(["fit", uri, "-t", "cell_type", "--tiledb-config", "vfs.min_batch_gap"])
    assert info.value.code == 2
    assert "expected KEY=VALUE, got 'vfs.min_batch_gap'" in capsys.readouterr().err
    pd.testing.assert_frame_equal(
        pd.read_csv(runs["plain"][1]), pd.read_csv(runs["merged"][1])
    )


def test_unknown_target_column_in_the_experiment(counts, tmp_path, capsys):
    uri, _, _ = counts
    argv = ["fit", uri, "-t", "disease", "--k", "3", "--out", str(tmp_path / "o")]
    assert main([*argv, *FAST]) == 1
    assert "disease" in capsys.readouterr().err
    assert SomaSource(uri).n_obs == 300
