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
from yoto_sklearn._io import FORMAT_NAME, FORMAT_VERSION, digest

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


def _read(path):
    """The header strings and tensors of a model file, read with safetensors."""
    from safetensors import safe_open

    with safe_open(path, framework="pt") as fh:
        return dict(fh.metadata()), {k: fh.get_tensor(k) for k in fh.keys()}


def _write(path, header, tensors):
    from safetensors.torch import save_file

    save_file(tensors, path, metadata=header)


def _meta(path):
    return json.loads(_read(path)[0]["metadata"])


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


def test_file_is_safetensors_and_has_metadata(model, tmp_path):
    sel, _, _ = model
    path = tmp_path / "model.pt"
    sel.save(path)
    header, tensors = _read(path)
    assert header["format"] == FORMAT_NAME
    meta = json.loads(header["metadata"])
    assert meta["format_version"] == FORMAT_VERSION == 2
    assert meta["versions"]["yoto_sklearn"] == yoto_sklearn.__version__
    assert meta["versions"]["torch"] == torch.__version__
    assert {"sklearn", "numpy"} <= set(meta["versions"])
    assert meta["params"]["k"] == 3
    assert meta["fitted"]["feature_names_in_"]["__ndarray__"] == NAMES
    assert [t["name"] for t in meta["tasks"]] == ["ct", "age", "sick", "stage"]
    assert meta["tasks"][2]["classes"]["dtype"] == "|b1"
    assert meta["tasks"][3]["classes"]["dtype"] == np.dtype(np.int32).str
    assert all(t.device.type == "cpu" for t in tensors.values())
    assert {"attr.scores_", "attr.support_", "attr.ranking_"} <= set(tensors)


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
        meta = _meta(tmp_path / "m.pt")
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
    assert all(t.device.type == "cpu" for t in _read(tmp_path / "m.pt")[1].values())
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
    header, tensors = _read(path)
    name = next(k for k in tensors if k.startswith("module_."))
    tensors[name] = tensors[name] + 1e-12
    _write(path, header, tensors)
    with pytest.raises(ValueError, match="failed its SHA-256 check"):
        YOTOSelector.load(path)


def test_edited_metadata_is_rejected(model, tmp_path):
    path = _saved(model, tmp_path)
    header, tensors = _read(path)
    header["metadata"] = header["metadata"].replace('"k_": 3', '"k_": 4')
    _write(path, header, tensors)
    with pytest.raises(ValueError, match="failed its SHA-256 check"):
        YOTOSelector.load(path)


def _resave(path, edit=None, edit_tensors=None, raw=None):
    """Forge a file: edit its metadata / tensors and recompute the checksum."""
    header, tensors = _read(path)
    if raw is not None:
        header["metadata"] = raw
    else:
        meta = json.loads(header["metadata"])
        if edit is not None:
            edit(meta)
        header["metadata"] = json.dumps(meta, sort_keys=True)
    if edit_tensors is not None:
        edit_tensors(tensors)
    header["sha256"] = digest(header["metadata"], tensors)
    _write(path, header, tensors)


def test_newer_format_version_is_rejected(model, tmp_path):
    path = _saved(model, tmp_path)
    _resave(path, lambda m: m.update(format_version=3))
    with pytest.raises(ValueError, match=r"format version 3\b.*upgrade yoto-sklearn"):
        YOTOSelector.load(path)
    _resave(path, lambda m: m.update(format_version=0))
    with pytest.raises(ValueError, match="format version 0"):
        YOTOSelector.load(path)


def test_newer_package_major_version_is_rejected(model, tmp_path):
    path = _saved(model, tmp_path)
    _resave(path, lambda m: m["versions"].update(yoto_sklearn="99.0.0"))
    with pytest.raises(ValueError, match="99.0.0.* newer major version"):
        YOTOSelector.load(path)


@pytest.mark.parametrize(
    "kind", ["text", "tensor_dict", "foreign_safetensors", "pickled_model", "empty"]
)
def test_not_a_model_file_is_rejected(model, tmp_path, kind):
    sel, _, _ = model
    path = tmp_path / "other.pt"
    if kind == "text":
        path.write_text("gene\tscore\nCD3E\t1.0\n")
        match = "not a readable YOTO model file"
    elif kind == "tensor_dict":
        torch.save({"weight": torch.ones(3)}, path)
        match = "not a YOTO model file"
    elif kind == "foreign_safetensors":
        _write(path, {"name": "bert"}, {"weight": torch.ones(3)})
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

    json.loads(_read(tmp_path / "m.pt")[0]["metadata"], parse_constant=refuse)
    loaded = YOTOSelector.load(tmp_path / "m.pt")
    assert np.isnan(loaded.validation_loss_curve_[-1])
    assert np.isnan(loaded.history_.validation_loss_curve[-1])
    assert loaded.validation_loss_curve_[:-1] == sel.validation_loss_curve_[:-1]


# ------------------------------------------------------- forged model files
def _set_fitted(name, value):
    return lambda m: m["fitted"].update({name: value})


def _first_task(**changes):
    return lambda m: m["tasks"][0].update(changes)


def _tensor_edit(name, fn):
    def edit(tensors):
        tensors[name] = fn(tensors[name])

    return edit


FORGERIES = {
    "metadata_not_json": (dict(raw="{not json"), "not valid JSON"),
    "metadata_not_object": (dict(raw="[1, 2]"), "not a JSON object"),
    "fitted_shadows_predict": (
        dict(edit=_set_fitted("predict", "boom")),
        r"unknown fitted attribute\(s\) \['predict'\]",
    ),
    "fitted_private_attribute": (
        dict(edit=_set_fitted("__class__", "x")),
        "unknown fitted attribute",
    ),
    "fitted_missing": (
        dict(edit=lambda m: m["fitted"].pop("k_")),
        r"\['k_'\] are missing",
    ),
    "k_beyond_genes": (dict(edit=_set_fitted("k_", 99)), r"fitted\.k_ must be in"),
    "k_bool": (dict(edit=_set_fitted("k_", True)), r"fitted\.k_ must be int"),
    "feature_names_length": (
        dict(edit=_set_fitted("feature_names_in_", ["a", "b"])),
        r"feature_names_in_ has 2 entries, expected 8",
    ),
    "feature_names_not_str": (
        dict(edit=_set_fitted("feature_names_in_", list(range(8)))),
        "must hold strings only",
    ),
    "task_names_mismatch": (
        dict(edit=_set_fitted("task_names_", ["a", "b", "c", "d"])),
        "task_names_ does not match",
    ),
    "task_kind_unknown": (dict(edit=_first_task(kind="ranking")), r"kind must be"),
    "task_std_zero": (dict(edit=_first_task(std=0.0)), r"std must be > 0"),
    "task_classes_duplicate": (
        dict(
            edit=_first_task(
                classes={
                    "__ndarray__": ["B", "B", "T"],
                    "dtype": "object",
                    "shape": [3],
                }
            )
        ),
        "at least 2 distinct labels",
    ),
    "task_classes_bad_dtype": (
        dict(
            edit=_first_task(
                classes={"__ndarray__": [1, 2, 3], "dtype": "V8", "shape": [3]}
            )
        ),
        "dtype 'V8' is not allowed",
    ),
    "task_classes_shape_lie": (
        dict(
            edit=_first_task(
                classes={"__ndarray__": ["B", "T"], "dtype": "object", "shape": [9]}
            )
        ),
        "2 values for an array of shape",
    ),
    "tasks_dropped": (
        dict(edit=lambda m: m["tasks"].pop()),
        "task_names_ does not match",
    ),
    "params_invalid": (
        dict(edit=lambda m: m["params"].update(k=-1)),
        r"params: The 'k' parameter",
    ),
    "history_wrong_type": (
        dict(edit=lambda m: m["history"].update(n_iter="many")),
        r"history\.n_iter must be int",
    ),
    "module_layer_count": (
        dict(edit=lambda m: m["module"].update(n_linears=5)),
        "'module_.linears.2.weight' is missing",
    ),
    "support_out_of_range": (
        dict(edit_tensors=_tensor_edit("attr.support_", lambda t: t + 100)),
        "outside the gene range",
    ),
    "support_wrong_shape": (
        dict(edit_tensors=_tensor_edit("attr.support_", lambda t: t[:1])),
        r"'attr.support_' has shape \(1,\), expected \(3,\)",
    ),
    "support_not_top_k": (
        dict(edit_tensors=_tensor_edit("attr.support_", lambda t: t.flip(0))),
        "not the top-k_",
    ),
    "ranking_not_permutation": (
        dict(edit_tensors=_tensor_edit("attr.ranking_", lambda t: t * 0 + 1)),
        "not a ranking",
    ),
    "weight_wrong_shape": (
        dict(
            edit_tensors=_tensor_edit(
                "module_.linears.0.weight", lambda t: t[:, :2].contiguous()
            )
        ),
        r"'module_.linears.0.weight' has shape \(8, 2\), expected \(8, 3\)",
    ),
    "weight_nan": (
        dict(
            edit_tensors=_tensor_edit(
                "module_.heads.0.bias", lambda t: t * float("nan")
            )
        ),
        "holds NaN or infinity",
    ),
    "extra_tensor": (
        dict(edit_tensors=lambda ts: ts.update(extra=torch.ones(2))),
        r"unexpected tensor\(s\) \['extra'\]",
    ),
    "scores_as_int": (
        dict(edit_tensors=_tensor_edit("attr.scores_", lambda t: t.long())),
        "has dtype int64",
    ),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_file_with_valid_checksum_is_rejected(model, tmp_path, forgery):
    """A file edited and re-checksummed is validated field by field: ValueError."""
    path = _saved(model, tmp_path)
    changes, match = FORGERIES[forgery]
    _resave(path, **changes)
    with pytest.raises(ValueError, match=match) as info:
        YOTOSelector.load(path)
    assert type(info.value) is ValueError


def test_unknown_params_and_history_fields_are_dropped(model, tmp_path):
    """Fields of another minor version change no prediction: they are ignored."""
    sel, X, _ = model
    path = _saved(model, tmp_path)

    def edit(m):
        m["params"]["future_option"] = 3
        m["history"]["future_curve"] = [1.0]

    _resave(path, edit)
    loaded = YOTOSelector.load(path)
    assert not hasattr(loaded, "future_option")
    np.testing.assert_array_equal(loaded.predict(X), sel.predict(X))


def test_format_version_1_torch_archive_still_loads(model, tmp_path):
    """Files of yoto-sklearn 0.1 (torch.save archives) load and are validated."""
    sel, X, _ = model
    header, tensors = _read(_saved(model, tmp_path))
    meta = json.loads(header["metadata"])
    meta["format_version"] = 1
    metadata = json.dumps(meta, sort_keys=True)
    payload = {
        "format": FORMAT_NAME,
        "metadata": metadata,
        "tensors": tensors,
        "sha256": digest(metadata, tensors),
    }
    legacy = tmp_path / "legacy.pt"
    torch.save(payload, legacy)
    np.testing.assert_array_equal(YOTOSelector.load(legacy).predict(X), sel.predict(X))
    meta["fitted"]["predict"] = 1  # the same validation applies
    payload["metadata"] = json.dumps(meta, sort_keys=True)
    payload["sha256"] = digest(payload["metadata"], tensors)
    torch.save(payload, legacy)
    with pytest.raises(ValueError, match="unknown fitted attribute"):
        YOTOSelector.load(legacy)
