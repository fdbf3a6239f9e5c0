"""Safe model files: save/load round trips, tamper and version checks, pickle."""

from __future__ import annotations

import io
import json
import os
import pickle

import anndata as ad
import joblib
import numpy as np
import pandas as pd
import pytest
import torch

import yoto_sklearn
from yoto_sklearn import YOTOSelector
from yoto_sklearn._io import FORMAT_NAME, _digest

from .conftest import FAST as BASE_FAST

FAST = dict(
    BASE_FAST,
    max_iter=3,
    hidden_layer_sizes=(8, 4),
    early_stopping=True,
    device="cpu",
    n_threads=1,
)
N, G = 60, 8
NAMES = [f"g{i}" for i in range(G)]


def _data(seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(N, G)), columns=NAMES)
    ct = np.array(["B", "T", "NK"], dtype=object)[np.arange(N) % 3]
    ct[::7] = None
    y = pd.DataFrame(
        {
            "ct": ct,
            "age": np.where(np.arange(N) % 5 == 0, np.nan, rng.normal(50, 9, N)),
            "sick": np.arange(N) % 2 == 0,
            "stage": (np.arange(N) % 4).astype(np.int32),
        }
    )
    return X, y


@pytest.fixture(scope="module")
def model():
    X, y = _data()
    return YOTOSelector(**FAST).fit(X, y), X, y


def _assert_same_model(a, b, X):
    np.testing.assert_array_equal(a.support_, b.support_)
    np.testing.assert_array_equal(a.scores_, b.scores_)
    np.testing.assert_array_equal(a.ranking_, b.ranking_)
    pa, pb = a.predict(X), b.predict(X)
    assert pa.dtype == pb.dtype
    np.testing.assert_array_equal(pa, pb)
    for qa, qb in zip(a.predict_proba(X), b.predict_proba(X), strict=True):
        if qa is None:
            assert qb is None
        else:
            np.testing.assert_array_equal(qa, qb)  # bit-identical
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert a.get_params() == b.get_params()
    for ca, cb in zip(a.classes_, b.classes_, strict=True):
        if ca is None:
            assert cb is None
        else:
            assert ca.dtype == cb.dtype
            np.testing.assert_array_equal(ca, cb)
    for name in vars(a):
        if name.endswith("_") and name not in ("module_", "tasks_", "classes_"):
            assert name in vars(b), name


def test_save_load_round_trip_is_bit_identical(model, tmp_path):
    sel, X, y = model
    path = tmp_path / "model.pt"
    sel.save(path)
    loaded = YOTOSelector.load(path)
    _assert_same_model(sel, loaded, X)
    assert loaded.score(X, y) == sel.score(X, y)
    assert loaded.loss_curve_ == sel.loss_curve_
    assert loaded.validation_loss_curve_ == sel.validation_loss_curve_
    assert loaded.n_iter_ == sel.n_iter_ and loaded.k_ == sel.k_
    assert loaded.history_.best_epoch == sel.history_.best_epoch
    np.testing.assert_array_equal(loaded.feature_names_in_, sel.feature_names_in_)
    # feature-name checks still apply to the loaded model
    with pytest.raises(ValueError, match="same order"):
        loaded.predict(X[NAMES[::-1]])
    assert [f for f in os.listdir(tmp_path) if f.startswith(".yoto-")] == []


def test_file_loads_with_weights_only_and_has_metadata(model, tmp_path):
    sel, _, _ = model
    path = tmp_path / "model.pt"
    sel.save(path)
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == FORMAT_NAME
    meta = json.loads(payload["metadata"])
    assert meta["format_version"] == 1
    assert meta["versions"]["yoto_sklearn"] == yoto_sklearn.__version__
    assert meta["versions"]["torch"] == torch.__version__
    assert {"sklearn", "numpy"} <= set(meta["versions"])
    assert meta["params"]["k"] == 3
    assert meta["fitted"]["feature_names_in_"]["__ndarray__"] == NAMES
    assert [t["name"] for t in meta["tasks"]] == ["ct", "age", "sick", "stage"]
    assert meta["tasks"][2]["classes"]["dtype"] == "|b1"
    assert meta["tasks"][3]["classes"]["dtype"] == np.dtype(np.int32).str
    assert all(t.device.type == "cpu" for t in payload["tensors"].values())


@pytest.mark.parametrize(
    "fit_input",
    ["ndarray_regression", "anndata", "string_classes", "random_state_instance"],
)
def test_round_trip_other_models(fit_input, tmp_path):
    rng = np.random.default_rng(1)
    Xa = rng.normal(size=(N, G))
    params = dict(FAST)
    if fit_input == "ndarray_regression":
        X, y, Xp = Xa, Xa[:, 0] * 2 + rng.normal(size=N), Xa
    elif fit_input == "anndata":
        obs = pd.DataFrame(
            {"ct": pd.Categorical(np.array(["a", "b"])[np.arange(N) % 2])},
            index=[f"c{i}" for i in range(N)],
        )
        X = ad.AnnData(Xa.astype(np.float32), obs=obs)
        X.var_names = NAMES
        y, Xp = "ct", X
    elif fit_input == "string_classes":
        X, y, Xp = Xa, np.array(["x", "yy", "zzz"])[np.arange(N) % 3], Xa
    else:
        X, y, Xp = Xa, np.arange(N) % 2, Xa
        params["random_state"] = np.random.RandomState(0)
    sel = YOTOSelector(**params).fit(X, y)
    sel.save(tmp_path / "m.pt")
    loaded = YOTOSelector.load(tmp_path / "m.pt")
    np.testing.assert_array_equal(sel.predict(Xp), loaded.predict(Xp))
    if fit_input == "random_state_instance":
        meta = json.loads(torch.load(tmp_path / "m.pt")["metadata"])
        assert meta["params_not_saved"] == ["random_state"]
        assert loaded.random_state is None
    else:
        assert loaded.get_params() == sel.get_params()


def test_model_trained_with_device_cpu_has_cpu_only_state(model, tmp_path):
    # module_ always lives on the CPU after fit, whatever the training device; the
    # CUDA variant below runs where a GPU exists.
    sel, X, _ = model
    assert all(p.device.type == "cpu" for p in sel.module_.parameters())
    sel.save(tmp_path / "m.pt")
    assert YOTOSelector.load(tmp_path / "m.pt").device_ == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_model_trained_on_cuda_loads_on_cpu(tmp_path):
    X, y = _data()
    sel = YOTOSelector(**{**FAST, "device": "cuda"}).fit(X, y)
    assert sel.device_.startswith("cuda")
    sel.save(tmp_path / "m.pt")
    payload = torch.load(tmp_path / "m.pt", map_location="cpu", weights_only=True)
    assert all(t.device.type == "cpu" for t in payload["tensors"].values())
    loaded = YOTOSelector.load(tmp_path / "m.pt")
    assert all(p.device.type == "cpu" for p in loaded.module_.parameters())
    np.testing.assert_array_equal(loaded.predict(X), sel.predict(X))
    buf = io.BytesIO()
    pickle.dump(sel, buf)
    with pytest.MonkeyPatch.context() as mp:  # a pickle, too, needs no CUDA
        mp.setattr(torch.cuda, "is_available", lambda: False)
        buf.seek(0)
        np.testing.assert_array_equal(pickle.load(buf).predict(X), sel.predict(X))


# ------------------------------------------------------------- broken files
def _saved(model, tmp_path):
    sel, _, _ = model
    path = tmp_path / "model.pt"
    sel.save(path)
    return path


def test_truncated_file_is_rejected(model, tmp_path):
    path = _saved(model, tmp_path)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 100):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="not a readable YOTO model file"):
            YOTOSelector.load(path)


def test_flipped_byte_in_tensor_data_is_rejected(model, tmp_path):
    sel, _, _ = model
    path = _saved(model, tmp_path)
    data = bytearray(path.read_bytes())
    at = bytes(data).find(sel.scores_.tobytes())
    assert at > 0
    data[at + 3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="not a readable YOTO|SHA-256"):
        YOTOSelector.load(path)


def test_edited_tensor_is_rejected(model, tmp_path):
    path = _saved(model, tmp_path)
    payload = torch.load(path, weights_only=True)
    name = next(k for k in payload["tensors"] if k.startswith("module_."))
    payload["tensors"][name] = payload["tensors"][name] + 1e-12
    torch.save(payload, path)
    with pytest.raises(ValueError, match="failed its SHA-256 check"):
        YOTOSelector.load(path)


def test_edited_metadata_is_rejected(model, tmp_path):
    path = _saved(model, tmp_path)
    payload = torch.load(path, weights_only=True)
    payload["metadata"] = payload["metadata"].replace('"k_": 3', '"k_": 4')
    torch.save(payload, path)
    with pytest.raises(ValueError, match="failed its SHA-256 check"):
        YOTOSelector.load(path)


def _resave(path, edit):
    payload = torch.load(path, weights_only=True)
    meta = json.loads(payload["metadata"])
    edit(meta)
    payload["metadata"] = json.dumps(meta, sort_keys=True)
    payload["sha256"] = _digest(payload["metadata"], payload["tensors"])
    torch.save(payload, path)


def test_newer_format_version_is_rejected(model, tmp_path):
    path = _saved(model, tmp_path)
    _resave(path, lambda m: m.update(format_version=2))
    with pytest.raises(ValueError, match=r"format version 2\b.*upgrade yoto-sklearn"):
        YOTOSelector.load(path)
    _resave(path, lambda m: m.update(format_version=0))
    with pytest.raises(ValueError, match="format version 0"):
        YOTOSelector.load(path)


def test_newer_package_major_version_is_rejected(model, tmp_path):
    path = _saved(model, tmp_path)
    _resave(path, lambda m: m["versions"].update(yoto_sklearn="99.0.0"))
    with pytest.raises(ValueError, match="99.0.0.* newer major version"):
        YOTOSelector.load(path)


@pytest.mark.parametrize("kind", ["text", "tensor_dict", "pickled_model", "empty"])
def test_not_a_model_file_is_rejected(model, tmp_path, kind):
    sel, _, _ = model
    path = tmp_path / "other.pt"
    if kind == "text":
        path.write_text("gene\tscore\nCD3E\t1.0\n")
        match = "not a readable YOTO model file"
    elif kind == "tensor_dict":
        torch.save({"weight": torch.ones(3)}, path)
        match = "not a YOTO model file"
    elif kind == "pickled_model":
        joblib.dump(sel, path)  # a pickle with code: refused, never unpickled
        match = "not a readable YOTO model file"
    else:
        path.write_bytes(b"")
        match = "not a readable YOTO model file"
    with pytest.raises(ValueError, match=match):
        YOTOSelector.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model file"):
        YOTOSelector.load(tmp_path / "absent.pt")


# ------------------------------------------------------------- pickle/joblib
def test_pickle_and_joblib_round_trips(model, tmp_path):
    sel, X, _ = model
    _assert_same_model(sel, pickle.loads(pickle.dumps(sel)), X)
    joblib.dump(sel, tmp_path / "m.joblib")
    _assert_same_model(sel, joblib.load(tmp_path / "m.joblib"), X)
    # and a loaded model pickles again
    sel.save(tmp_path / "m.pt")
    loaded = YOTOSelector.load(tmp_path / "m.pt")
    _assert_same_model(sel, pickle.loads(pickle.dumps(loaded)), X)


def test_metadata_is_strict_json_and_nan_curves_round_trip(model, tmp_path):
    sel = pickle.loads(pickle.dumps(model[0]))
    sel.validation_loss_curve_[-1] = float("nan")  # as after an interrupted epoch
    sel.history_.validation_loss_curve[-1] = float("nan")
    sel.save(tmp_path / "m.pt")

    def refuse(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    meta = torch.load(tmp_path / "m.pt", weights_only=True)["metadata"]
    json.loads(meta, parse_constant=refuse)
    loaded = YOTOSelector.load(tmp_path / "m.pt")
    assert np.isnan(loaded.validation_loss_curve_[-1])
    assert np.isnan(loaded.history_.validation_loss_curve[-1])
    assert loaded.validation_loss_curve_[:-1] == sel.validation_loss_curve_[:-1]
