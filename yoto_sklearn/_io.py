"""Safe model files: safetensors weights plus JSON metadata, validated on load.

A model file (format version 2) is one `safetensors <https://github.com/huggingface/
safetensors>`_ file: a JSON header, then the raw bytes of every tensor. The header's
``__metadata__`` holds three strings::

    {
        "format": "yoto-sklearn-model",
        "metadata": "<JSON string>",  # versions, parameters, fitted values, tasks
        "sha256": "<hex digest>",     # of the metadata and every tensor
    }

and the tensors are the panel network (``module_.*``) and the numeric fitted arrays
(``attr.scores_``, ``attr.support_``, ``attr.ranking_``).

Why safetensors. Reading it parses a length-prefixed JSON header and copies bytes:
no unpickler is involved, so no file can run code, on any torch version. The
version-1 files of yoto-sklearn 0.1 were ``torch.save`` archives read with
``torch.load(weights_only=True)``, whose restricted unpickler is safe only on recent
torch (CVE-2025-32434 made it run code on torch <= 2.5.1, which ``torch>=2.1``
allows). Version-1 files are still read, through that path, and validated the same
way.

Why the validation. The SHA-256 catches accidents (truncation, corruption, an edit by
hand), not forgery: anyone can recompute it. So :func:`load_model` trusts nothing it
reads. Parameters, fitted attributes and history fields come from a fixed list (a
file cannot set any other attribute, e.g. shadow ``predict``); every value is checked
for type, shape, range and consistency (panel indices inside the gene range and
matching the ranking, layer shapes chaining from ``k`` genes to one head per task,
class lists unique, finite weights) and any mismatch is a ``ValueError`` naming the
field. The fitted panel network (``module_``) is stored on the CPU with
standardisation folded in, so a model trained on CUDA loads on a CPU-only machine,
and predictions after loading are bit-identical.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
import warnings
from typing import Any

import numpy as np
import sklearn
import torch

from ._budget import BUDGET_ATTRS, stored_budget
from ._codec import (
    Invalid,
    NotJSON,
    as_float,
    as_floats,
    as_int,
    as_strs,
    decode,
    encode,
    encode_array,
    expect,
)
from ._design import stored_input_transform
from ._fitted import TENSOR_ATTRS, FittedState
from ._network import PanelNetwork, linear_from
from ._targets import TASK_TYPES, TaskSpec, has_classes
from ._training import History

FORMAT_NAME = "yoto-sklearn-model"
FORMAT_VERSION = 2
# Version 1: a torch.save archive (see the module docstring); read, never written.
_LEGACY_VERSION = 1
# Fitted attributes rebuilt from others on load rather than stored.
_DERIVED = ("classes_",)
_SPECIAL = ("module_", "tasks_", "history_")
# Fitted attributes a file may set as JSON (the tensors are TENSOR_ATTRS).
_JSON_ATTRS = (
    "n_features_in_",
    "feature_names_in_",
    "k_",
    "task_names_",
    "task_types_",
    "loss_curve_",
    "validation_loss_curve_",
    "validation_scores_",
    "best_validation_score_",
    "n_iter_",
    "device_",
    "required_",
    "excluded_",
    "anndata_input_",
    "binarize_threshold_",
    "count_target_sum_",
    *BUDGET_ATTRS,
)
# Absent from older files: 0.1 had no panel constraints; before issue 20 the matrix
# read from an AnnData and the fitted threshold were not stored.
_OPTIONAL_ATTRS = (
    "feature_names_in_",
    "required_",
    "excluded_",
    "anndata_input_",
    "binarize_threshold_",
    "count_target_sum_",
    *BUDGET_ATTRS,
)


# ------------------------------------------------------------------- digest
def digest(metadata: str, tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    h.update(FORMAT_NAME.encode())
    h.update(len(metadata.encode()).to_bytes(8, "little"))
    h.update(metadata.encode())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        head = f"{name}|{t.dtype}|{tuple(t.shape)}|".encode()
        h.update(len(head).to_bytes(8, "little"))
        h.update(head)
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


# --------------------------------------------------------------------- save
def _tasks_meta(tasks: list[TaskSpec]) -> list[dict]:
    out = []
    for t in tasks:
        out.append(
            {
                "name": t.name,
                "kind": t.kind,
                "classes": None if t.classes is None else encode_array(t.classes),
                "mean": t.mean,
                "std": t.std,
                "class_counts": None
                if t.class_counts is None
                else encode_array(np.asarray(t.class_counts)),
            }
        )
    return out


def save_model(estimator: Any, path: str | os.PathLike) -> None:
    """Write a fitted estimator to ``path`` (see the module docstring).

    The file is written to a temporary name in the same folder and then renamed,
    so an interrupted save never leaves a half-written model at ``path``.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    ValueError
        If a fitted value cannot be stored without pickling (e.g. class labels that
        are neither numbers, booleans nor strings).
    """
    from safetensors.torch import save_file
    from sklearn.utils.validation import check_is_fitted

    from . import __version__

    check_is_fitted(estimator)
    params: dict[str, Any] = {}
    not_saved: list[str] = []
    for name, value in estimator.get_params(deep=False).items():
        try:
            params[name] = encode(_plain(value))
        except NotJSON:
            not_saved.append(name)
    tensors: dict[str, torch.Tensor] = {}
    for name, value in estimator.module_.state_dict().items():
        tensors[f"module_.{name}"] = value.detach().cpu().contiguous().clone()
    fitted: dict[str, Any] = {}
    for name, value in vars(estimator).items():
        if not name.endswith("_") or name.startswith("_"):
            continue
        if name in _SPECIAL or name in _DERIVED:
            continue
        if name in TENSOR_ATTRS:
            array = np.ascontiguousarray(value)
            tensors[f"attr.{name}"] = torch.from_numpy(array.copy())
            continue
        try:
            fitted[name] = encode(value)
        except NotJSON as exc:
            raise ValueError(
                f"Cannot save fitted attribute {name!r} of type "
                f"{type(value).__name__} without pickling; use joblib/pickle for "
                "this model."
            ) from exc
    try:
        tasks = _tasks_meta(estimator.tasks_)
    except NotJSON as exc:
        raise ValueError(
            "Cannot save class labels that are not numbers, booleans or strings; "
            "use joblib/pickle for this model."
        ) from exc
    history = dataclasses.asdict(estimator.history_)
    history.pop("best_state", None)
    try:
        history = {k: encode(v) for k, v in history.items()}
    except NotJSON as exc:
        raise ValueError("Cannot save the training history without pickling.") from exc
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "class": type(estimator).__name__,
        "versions": {
            "yoto_sklearn": __version__,
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "numpy": np.__version__,
        },
        "params": params,
        "params_not_saved": not_saved,
        "fitted": fitted,
        "tasks": tasks,
        "history": history,
        "module": {
            "n_linears": len(estimator.module_.linears),
            "n_heads": len(estimator.module_.heads),
        },
    }
    metadata = json.dumps(meta, sort_keys=True, allow_nan=False)
    header = {
        "format": FORMAT_NAME,
        "metadata": metadata,
        "sha256": digest(metadata, tensors),
    }
    path = os.fsdecode(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".yoto-", suffix=".tmp", dir=folder)
        os.close(fd)
        save_file(tensors, tmp, metadata=header)
        # mkstemp makes the file private (0600); a model file gets the mode the
        # user's other files get (0644 with the usual umask)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as exc:  # name the file asked for, not the temporary one
        raise type(exc)(
            exc.errno, f"cannot write the model file {path!r}: {exc.strerror}"
        ) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _plain(value: Any) -> Any:
    """Containers JSON cannot hold, as the list they stand for.

    A pandas Index or Series (``adata.var_names[...]``) becomes its list; a set its
    sorted list, the order ``required_genes`` gives a set.
    """
    if hasattr(value, "tolist") and type(value).__module__.startswith("pandas"):
        return value.tolist()
    if isinstance(value, set | frozenset):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    return value


# --------------------------------------------------------------------- load
def _major(version: str) -> int | None:
    m = re.match(r"\s*(\d+)", str(version))
    return int(m.group(1)) if m else None


def _unreadable(path: str, exc: BaseException) -> ValueError:
    first = (str(exc).splitlines() or [""])[0][:200]
    return ValueError(
        f"{path!r} is not a readable YOTO model file (truncated, corrupted, not a "
        f"model file, or it holds Python objects that are not loaded for safety): "
        f"{type(exc).__name__}: {first}"
    )


def _read_safetensors(path: str) -> tuple[dict, dict[str, torch.Tensor]]:
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt", device="cpu") as fh:
            header = fh.metadata() or {}
            tensors = {name: fh.get_tensor(name) for name in fh.keys()}  # noqa: SIM118
    except Exception as exc:  # SafetensorError, OSError, ...
        raise _unreadable(path, exc) from exc
    return header, tensors


def _read_torch_archive(path: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """Format version 1: a ``torch.save`` archive of a plain dict."""
    try:
        with warnings.catch_warnings():
            # a pickle with a newer protocol is refused below anyway
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, ...
        raise _unreadable(path, exc) from exc
    if not isinstance(payload, dict):
        return {}, {}
    tensors = payload.get("tensors")
    return {k: payload.get(k) for k in ("format", "metadata", "sha256")}, (
        tensors if isinstance(tensors, dict) else None
    )


def read_payload(path: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read, verify and return ``(metadata, tensors)`` of a model file.

    Raises
    ------
    ValueError
        If the file is not a readable YOTO model file, fails its checksum, or comes
        from an incompatible format or a newer major package version.
    """
    from . import __version__

    path = os.fsdecode(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No model file at {path!r}.")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic == b"PK\x03\x04":  # a zip archive: torch.save, format version 1
        header, tensors = _read_torch_archive(path)
    else:
        header, tensors = _read_safetensors(path)
    if header.get("format") != FORMAT_NAME:
        raise ValueError(
            f"{path!r} is not a YOTO model file (no {FORMAT_NAME!r} format marker)."
        )
    metadata, checksum = header.get("metadata"), header.get("sha256")
    if (
        not isinstance(metadata, str)
        or not isinstance(tensors, dict)
        or not all(
            isinstance(k, str) and isinstance(t, torch.Tensor)
            for k, t in tensors.items()
        )
        or not isinstance(checksum, str)
    ):
        raise ValueError(f"{path!r} is a damaged YOTO model file (missing parts).")
    if digest(metadata, tensors) != checksum:
        raise ValueError(
            f"{path!r} failed its SHA-256 check: the model file was modified or "
            "corrupted after it was saved."
        )
    try:
        meta = json.loads(metadata)
    except ValueError as exc:
        raise ValueError(
            f"{path!r} holds metadata that is not valid JSON ({exc})."
        ) from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path!r} holds metadata that is not a JSON object.")
    version = meta.get("format_version")
    container = _LEGACY_VERSION if magic == b"PK\x03\x04" else FORMAT_VERSION
    if version != container:
        newer = (
            isinstance(version, int)
            and not isinstance(version, bool)
            and version > FORMAT_VERSION
        )
        raise ValueError(
            f"{path!r} uses model format version {version}, but this yoto-sklearn "
            f"({__version__}) reads versions {_LEGACY_VERSION} and {FORMAT_VERSION} "
            + ("only; upgrade yoto-sklearn to load it." if newer else "only.")
        )
    versions = meta.get("versions")
    saved = versions.get("yoto_sklearn", "") if isinstance(versions, dict) else ""
    saved_major, ours = _major(saved), _major(__version__)
    if saved_major is None or (ours is not None and saved_major > ours):
        raise ValueError(
            f"{path!r} was saved by yoto-sklearn {saved!r}, a newer major version "
            f"than the installed {__version__}; upgrade yoto-sklearn to load it."
        )
    return meta, tensors


# ------------------------------------------------------------- validation
def _indices(value: Any, where: str, n_features: int) -> np.ndarray:
    """Unique gene indices in ``[0, n_features)`` (empty when absent)."""
    if value is None:
        return np.empty(0, dtype=np.int64)
    if (
        not isinstance(value, np.ndarray)
        or value.ndim != 1
        or (value.size and value.dtype.kind not in "iu")
    ):
        raise Invalid(f"{where} must be a 1-D array of gene indices")
    value = value.astype(np.int64)
    if value.size and (value.min() < 0 or value.max() >= n_features):
        raise Invalid(f"{where} holds gene indices outside the gene range")
    if len(np.unique(value)) != len(value):
        raise Invalid(f"{where} has duplicate entries")
    return value


def _tensor(
    tensors: dict[str, torch.Tensor], name: str, shape: tuple[int, ...], kinds: str
) -> np.ndarray:
    if name not in tensors:
        raise Invalid(f"tensor {name!r} is missing")
    t = tensors[name]
    if tuple(t.shape) != shape:
        raise Invalid(f"tensor {name!r} has shape {tuple(t.shape)}, expected {shape}")
    array = t.numpy().copy()
    if array.dtype.kind not in kinds:
        raise Invalid(f"tensor {name!r} has dtype {array.dtype}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise Invalid(f"tensor {name!r} holds NaN or infinity")
    return array


def _task(value: Any, j: int) -> TaskSpec:
    where = f"tasks[{j}]"
    t = expect(value, dict, where)
    name = expect(t.get("name"), str, f"{where}.name")
    kind = t.get("kind")
    if kind not in TASK_TYPES:
        raise Invalid(f"{where}.kind must be one of {TASK_TYPES}, got {kind!r}")
    mean = as_float(t.get("mean"), f"{where}.mean", finite=True)
    std = as_float(t.get("std"), f"{where}.std", finite=True)
    if std <= 0:
        raise Invalid(f"{where}.std must be > 0, got {std}")
    classes = counts = None
    if has_classes(kind):
        classes = decode(t.get("classes"), f"{where}.classes")
        if not isinstance(classes, np.ndarray) or classes.ndim != 1:
            raise Invalid(f"{where}.classes must be a 1-D array")
        if len(classes) < 2 or len(set(classes.tolist())) != len(classes):
            raise Invalid(f"{where}.classes must hold at least 2 distinct labels")
        if t.get("class_counts") is not None:
            counts = decode(t["class_counts"], f"{where}.class_counts")
            if (
                not isinstance(counts, np.ndarray)
                or counts.shape != classes.shape
                or counts.dtype.kind not in "iu"
            ):
                raise Invalid(f"{where}.class_counts must be one count per class")
    elif t.get("classes") is not None:
        raise Invalid(f"{where} is a regression task but lists classes")
    return TaskSpec(
        name, kind, classes=classes, mean=mean, std=std, class_counts=counts
    )


def _module(meta: dict, tensors: dict, k: int, tasks: list[TaskSpec]) -> PanelNetwork:
    shape = expect(meta.get("module"), dict, "module")
    n_linears = as_int(shape.get("n_linears"), "module.n_linears", 1, 64)
    n_heads = as_int(shape.get("n_heads"), "module.n_heads", 1)
    if n_heads != len(tasks):
        raise Invalid(f"module has {n_heads} heads for {len(tasks)} tasks")
    expected = {f"attr.{a}" for a in TENSOR_ATTRS}
    width = k
    linears = []
    for i in range(n_linears):
        w_name, b_name = f"module_.linears.{i}.weight", f"module_.linears.{i}.bias"
        if w_name not in tensors:
            raise Invalid(f"tensor {w_name!r} is missing")
        out = int(tensors[w_name].shape[0]) if tensors[w_name].ndim == 2 else -1
        if out < 1:
            raise Invalid(f"tensor {w_name!r} must be 2-D with rows")
        w = _tensor(tensors, w_name, (out, width), "f")
        b = _tensor(tensors, b_name, (out,), "f")
        linears.append(linear_from(torch.from_numpy(w), torch.from_numpy(b)))
        expected |= {w_name, b_name}
        width = out
    heads = []
    for j, task in enumerate(tasks):
        w_name, b_name = f"module_.heads.{j}.weight", f"module_.heads.{j}.bias"
        w = _tensor(tensors, w_name, (task.n_outputs, width), "f")
        b = _tensor(tensors, b_name, (task.n_outputs,), "f")
        heads.append(linear_from(torch.from_numpy(w), torch.from_numpy(b)))
        expected |= {w_name, b_name}
    extra = sorted(set(tensors) - expected)
    if extra:
        raise Invalid(f"unexpected tensor(s) {extra[:5]}")
    module = PanelNetwork(linears, heads)
    module.eval()
    return module


def _history(value: Any) -> History:
    h = expect(value, dict, "history")
    fields = {f.name: f for f in dataclasses.fields(History)}
    out: dict[str, Any] = {}
    for key, raw in h.items():
        if key not in fields or key == "best_state":
            continue  # a field of another version: dropped, it changes no prediction
        where = f"history.{key}"
        v = decode(raw, where)
        if key in ("stopped_early", "interrupted", "stopped_by_callback"):
            out[key] = expect(v, bool, where)
        elif key in ("selection_epochs", "n_iter"):
            out[key] = as_int(v, where)
        elif key == "best_epoch":
            out[key] = None if v is None else as_int(v, where)
        else:
            out[key] = as_floats(v, where)
    return History(**out)


def _anndata_input(value: Any) -> dict | None:
    """The AnnData matrix read at fit: None, or {"layer": str | None, "use_raw"}."""
    if value is None:
        return None
    where = "fitted.anndata_input_"
    value = expect(value, dict, where)
    if set(value) != {"layer", "use_raw"}:
        raise Invalid(f"{where} must have the keys layer and use_raw")
    if value["layer"] is not None:
        expect(value["layer"], str, f"{where}.layer")
    expect(value["use_raw"], bool, f"{where}.use_raw")
    if value["layer"] is not None and value["use_raw"]:
        raise Invalid(f"{where} names a layer and raw at once")
    return {"layer": value["layer"], "use_raw": value["use_raw"]}


def load_model(cls: type, path: str | os.PathLike) -> Any:
    """Rebuild a fitted estimator of class ``cls`` from a model file.

    Every value read is validated (see the module docstring).

    Raises
    ------
    ValueError
        See :func:`read_payload`; also if the file holds a different estimator class
        or its content does not describe a fitted estimator.
    """
    meta, tensors = read_payload(path)
    where = os.fsdecode(path)
    if meta.get("class") != cls.__name__:
        raise ValueError(
            f"{where!r} holds a {meta.get('class')!r} model, not {cls.__name__!r}."
        )
    try:
        return _rebuild(cls, meta, tensors)
    except Invalid as exc:
        raise ValueError(
            f"{where!r} passed its checksum but does not describe a valid fitted "
            f"{cls.__name__}: {exc}."
        ) from None


def _rebuild(cls: type, meta: dict, tensors: dict[str, torch.Tensor]) -> Any:
    from sklearn.utils._param_validation import InvalidParameterError

    raw_params = expect(meta.get("params"), dict, "params")
    valid = cls().get_params(deep=False)
    # Parameters of another version are dropped: they change no prediction.
    params = {k: decode(v, f"params.{k}") for k, v in raw_params.items() if k in valid}
    estimator = cls(**params)
    try:
        estimator._validate_params()
    except InvalidParameterError as exc:
        raise Invalid(f"params: {exc}") from None

    fitted = expect(meta.get("fitted"), dict, "fitted")
    unknown = sorted(set(fitted) - set(_JSON_ATTRS))
    if unknown:
        raise Invalid(f"unknown fitted attribute(s) {unknown[:5]}")
    missing = sorted(set(_JSON_ATTRS) - set(_OPTIONAL_ATTRS) - set(fitted))
    if missing:
        raise Invalid(f"fitted attribute(s) {missing} are missing")
    values = {k: decode(v, f"fitted.{k}") for k, v in fitted.items()}
    n_features = as_int(values["n_features_in_"], "fitted.n_features_in_", 1)
    k = as_int(values["k_"], "fitted.k_", 1, n_features)

    tasks = [
        _task(t, j) for j, t in enumerate(expect(meta.get("tasks"), list, "tasks"))
    ]
    if not tasks:
        raise Invalid("tasks is empty")
    names = as_strs([t.name for t in tasks], "task names")
    if as_strs(values["task_names_"], "fitted.task_names_") != names:
        raise Invalid("fitted.task_names_ does not match the tasks")
    if values["task_types_"] != [t.kind for t in tasks]:
        raise Invalid("fitted.task_types_ does not match the tasks")

    scores = _tensor(tensors, "attr.scores_", (n_features,), "f")
    support = _tensor(tensors, "attr.support_", (k,), "iu").astype(np.int64)
    ranking = _tensor(tensors, "attr.ranking_", (n_features,), "iu").astype(np.int64)
    if not np.array_equal(np.sort(ranking), np.arange(1, n_features + 1)):
        raise Invalid("attr.ranking_ is not a ranking of the genes")
    if (support < 0).any() or (support >= n_features).any():
        raise Invalid("attr.support_ holds gene indices outside the gene range")
    if not np.array_equal(ranking[support], np.arange(1, k + 1)):
        raise Invalid("attr.support_ is not the top-k_ of attr.ranking_")

    required = _indices(values.get("required_"), "fitted.required_", n_features)
    excluded = _indices(values.get("excluded_"), "fitted.excluded_", n_features)
    if not np.array_equal(support[: len(required)], required):
        raise Invalid("fitted.required_ are not the first genes of attr.support_")
    if np.intersect1d(excluded, support).size:
        raise Invalid("fitted.excluded_ overlaps the panel attr.support_")

    loads, panel_load, penalties = stored_budget(values, params, support, n_features)
    threshold, target_sum = stored_input_transform(values, params)
    feature_names = None
    if "feature_names_in_" in values:
        feature_names = np.asarray(
            as_strs(
                values["feature_names_in_"], "fitted.feature_names_in_", n_features
            ),
            dtype=object,
        )
    best = values["best_validation_score_"]
    FittedState(
        n_features_in_=n_features,
        feature_names_in_=feature_names,
        k_=k,
        scores_=scores,
        support_=support,
        ranking_=ranking,
        required_=required,
        excluded_=excluded,
        tasks_=tasks,
        loss_curve_=as_floats(values["loss_curve_"], "fitted.loss_curve_"),
        validation_loss_curve_=as_floats(
            values["validation_loss_curve_"], "fitted.validation_loss_curve_", True
        ),
        validation_scores_=as_floats(
            values["validation_scores_"], "fitted.validation_scores_", True
        ),
        best_validation_score_=(
            None if best is None else as_float(best, "fitted.best_validation_score_")
        ),
        n_iter_=as_int(values["n_iter_"], "fitted.n_iter_"),
        device_=expect(values["device_"], str, "fitted.device_"),
        history_=_history(meta.get("history")),
        module_=_module(meta, tensors, k, tasks),
        anndata_input_=(
            _anndata_input(values["anndata_input_"])
            if "anndata_input_" in values
            # older files: unknown for a model with gene names (it may have read
            # a layer or raw); a model fitted on an array read its matrix
            else (
                {"layer": None, "use_raw": None} if feature_names is not None else None
            )
        ),
        binarize_threshold_=threshold,
        count_target_sum_=target_sum,
        gene_loads_=loads,
        panel_load_=panel_load,
        gene_penalties_=penalties,
    ).apply(estimator)
    return estimator


class ModelFileMixin:
    """``save`` and ``load`` of a selector (model files, see the module docstring)."""

    def save(self, path: str | os.PathLike) -> None:
        """Save the fitted model to one safe, portable file.

        The file is a `safetensors` file: tensors plus JSON metadata (package,
        torch and scikit-learn versions, parameters, feature names, classes,
        fitted values) and a SHA-256 checksum. Reading it involves no unpickler, so
        loading never runs code. A ``random_state`` that is a ``RandomState``
        instance, and ``callbacks``, are not stored (they are listed in the
        metadata under ``params_not_saved``).

        Parameters
        ----------
        path : str or path-like
            Destination file (e.g. ``model.safetensors``); written atomically.
        """
        save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Any:
        """Load a model written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            A file written by :meth:`save`.

        Returns
        -------
        selector : YOTOSelector
            The fitted selector, on the CPU; it predicts bit-identically to the
            saved one.

        Raises
        ------
        ValueError
            If the file is truncated, corrupted or modified (checksum), is not a
            YOTO model file, uses an unsupported format version, was written by
            a newer major version of yoto-sklearn, or holds any value that does
            not describe a fitted selector (every field is validated: a forged
            file with a recomputed checksum is refused too).
        """
        return load_model(cls, path)
