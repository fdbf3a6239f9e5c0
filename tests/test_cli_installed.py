"""The command line as installed (``yoto-sklearn`` on PATH), on inputs that were read
wrongly before (issue 12: items 1, 2, 6, 7). Each case runs the real executable in a
subprocess, as a user would."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest

from tests._scverse_data import make_adata

FAST = ["--max-iter", "4", "--set", "hidden_layer_sizes=(16,)", "--quiet"]


def _executable() -> str | None:
    """The installed console script: on PATH, or next to this Python."""
    beside = Path(sys.executable).parent / "yoto-sklearn"
    return shutil.which("yoto-sklearn") or (str(beside) if beside.exists() else None)


def run(*argv: str) -> subprocess.CompletedProcess:
    exe = _executable()
    assert exe is not None, "the yoto-sklearn command is not installed"
    return subprocess.run(
        [exe, *map(str, argv)], capture_output=True, text=True, timeout=300
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr
    err = result.stderr.strip()
    assert err.count("\n") == 0 and err.startswith("yoto-sklearn: error: "), err
    return err


def _table(adata: anndata.AnnData) -> pd.DataFrame:
    table = pd.DataFrame(np.asarray(adata.X), columns=adata.var_names)
    table.insert(0, "cell_type", adata.obs["cell_type"].astype(str).to_numpy())
    return table


def test_row_number_column_of_to_csv_is_not_a_gene(tmp_path):
    # rows grouped by label: the row number alone predicts the label perfectly
    table = _table(make_adata()).sort_values("cell_type").reset_index(drop=True)
    data = tmp_path / "cells.csv"
    table.to_csv(data)  # writes the index as a first column with an empty header
    out = tmp_path / "run"
    result = run("fit", data, "-t", "cell_type", "--k", "5", "--out", out, *FAST)
    assert result.returncode == 0, result.stderr
    genes = json.loads((out / "metrics.json").read_text())["panel"]
    assert all(g.startswith("G") for g in genes), genes
    scores = pd.read_csv(out / "gene_scores.csv")
    assert len(scores) == 40 and scores["gene"].str.startswith("G").all()


def test_boolean_obs_labels_round_trip(tmp_path):
    adata = make_adata()
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    out = tmp_path / "run"
    result = run("fit", path, "-t", "flag", "--k", "5", "--out", out, *FAST)
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "metrics.json").read_text())
    assert record["task_types"] == ["classification"]
    assert (out / "confusion_train_flag.png").exists()
    pred = tmp_path / "p.csv"
    assert run("predict", out, path, "--out", pred, "-q").returncode == 0
    flags = pd.read_csv(pred, index_col="cell")["flag"]
    assert flags.dtype == bool  # not 0.0 / 1.0
    # the reported accuracy is the agreement of these predictions with the labels
    # (before the fix: "True" compared with "1.0", accuracy 0)
    accuracy = float(np.mean(flags.to_numpy() == adata.obs["flag"].to_numpy()))
    assert record["train_metrics"]["flag"]["accuracy"] == pytest.approx(accuracy)
    assert accuracy >= 0.5


def test_refit_into_the_same_folder_replaces_the_earlier_run(tmp_path):
    path = tmp_path / "cells.h5ad"
    make_adata().write_h5ad(path)
    out = tmp_path / "run"
    (tmp_path / "keep.txt").write_text("mine")
    common = ["--k", "5", "--out", out, *FAST]
    assert run("fit", path, "-t", "cell_type", "-t", "batch", *common).returncode == 0
    assert (out / "confusion_train_batch.png").exists()
    (out / "notes.txt").write_text("not ours")
    assert run("fit", path, "-t", "cell_type", *common).returncode == 0
    assert not (out / "confusion_train_batch.png").exists()
    assert (out / "confusion_train_cell_type.png").exists()
    assert (out / "notes.txt").read_text() == "not ours"


def test_csv_misreads_are_refused_with_one_line(tmp_path):
    table = _table(make_adata())
    out = ["--k", "3", "--out", tmp_path / "out", "-q"]

    duplicated = table.rename(columns={"G4": "G3"})
    duplicated.to_csv(tmp_path / "dup.csv", index=False)
    err = one_line_error(run("fit", tmp_path / "dup.csv", "-t", "cell_type", *out))
    assert "duplicate column name(s) ['G3']" in err

    table.to_csv(tmp_path / "cells.csv", index=False)
    err = one_line_error(run("fit", tmp_path / "cells.csv", "-t", "celltype", *out))
    assert "--target 'celltype' is not a column of cells.csv" in err
    assert "did you mean 'cell_type'" in err

    table.iloc[:0].to_csv(tmp_path / "empty.csv", index=False)
    err = one_line_error(run("fit", tmp_path / "empty.csv", "-t", "cell_type", *out))
    assert "has a header but no rows" in err


def test_predict_csv_with_a_label_first_column_keeps_row_order(tmp_path):
    adata = make_adata()
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    out = tmp_path / "run"
    assert (
        run("fit", path, "-t", "cell_type", "--k", "5", "--out", out, *FAST).returncode
        == 0
    )
    new = tmp_path / "new.csv"
    _table(adata).to_csv(new, index=False)  # first column: repeated text labels
    pred = tmp_path / "p.csv"
    assert run("predict", out, new, "--out", pred, "-q").returncode == 0
    cells = pd.read_csv(pred)["cell"].astype(str)
    assert list(cells) == [str(i) for i in range(adata.n_obs)]  # not the labels
