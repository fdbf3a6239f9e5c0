"""Safe model files: tensors plus JSON metadata, loadable without unpickling code.

A model file is one ``torch.save`` archive holding a plain dict::

    {
        "format": "yoto-sklearn-model",
        "metadata": "<JSON string>",          # versions, parameters, fitted values
        "tensors": {"<name>": torch.Tensor},  # scores, panel network, numeric arrays
        "sha256": "<hex digest>",             # of the metadata and every tensor
    }

It is read with ``torch.load(weights_only=True)``, which refuses anything but
tensors and plain containers, so opening a model file cannot run code. The digest
covers the metadata and the raw bytes, dtype and shape of every tensor, so a
truncated, corrupted or edited file is rejected. The fitted panel network
(``module_``) is already on the CPU with standardisation folded in, so a model
trained on CUDA loads on a CPU-only machine, and predictions after loading are
bit-identical.
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
from torch import nn

from ._data import CLASSIFICATION, TaskSpec
from ._network import PanelNetwork, _linear_from
from ._training import History

FORMAT_NAME = "yoto-sklearn-model"
FORMAT_VERSION = 1
# Fitted attributes rebuilt from others on load rather than stored.
_DERIVED = ("classes_",)
_SPECIAL = ("module_", "tasks_", "history_")


class _NotJSON(Exception):
    pass


# ----------------------------------------------------------------- JSON values
def _encode(value: Any) -> Any:
    """A JSON-able form of ``value`` that :func:`_decode` inverts exactly."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return {"__float__": repr(value)}  # strict JSON has no NaN / Infinity
    if isinstance(value, int | float):
        return value
    if isinstance(value, np.str_):
        return str(value)
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise _NotJSON(value)
        return {"__dict__": {k: _encode(v) for k, v in value.items()}}
    if isinstance(value, np.ndarray):
        return _encode_array(value)
    raise _NotJSON(value)


def _encode_array(arr: np.ndarray) -> dict:
    if arr.dtype.kind in "biufU":
        items = [_encode(v) for v in arr.ravel().tolist()]
        return {"__ndarray__": items, "dtype": arr.dtype.str, "shape": list(arr.shape)}
    if arr.dtype == object:
        items = []
        for v in arr.ravel():
            if isinstance(v, np.generic):
                v = v.item()
            if not (v is None or isinstance(v, bool | int | float | str)):
                raise _NotJSON(arr)
            items.append(_encode(v))
        return {"__ndarray__": items, "dtype": "object", "shape": list(arr.shape)}
    raise _NotJSON(arr)


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "__float__" in value:
            return float(value["__float__"])
        if "__tuple__" in value:
            return tuple(_decode(v) for v in value["__tuple__"])
        if "__dict__" in value:
            return {k: _decode(v) for k, v in value["__dict__"].items()}
        if "__ndarray__" in value:
            if value["dtype"] == "object":
                items = [_decode(v) for v in value["__ndarray__"]]
                out = np.empty(len(items), dtype=object)
                out[:] = items
                return out.reshape(value["shape"])
            items = [_decode(v) for v in value["__ndarray__"]]
            out = np.array(items, dtype=np.dtype(value["dtype"]))
            return out.reshape(value["shape"])
    return value


# ------------------------------------------------------------------- digest
def _digest(metadata: str, tensors: dict[str, torch.Tensor]) -> str:
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
                "classes": None if t.classes is None else _encode_array(t.classes),
                "mean": t.mean,
                "std": t.std,
                "class_counts": None
                if t.class_counts is None
                else _encode_array(np.asarray(t.class_counts)),
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
    from sklearn.utils.validation import check_is_fitted

    from . import __version__

    check_is_fitted(estimator)
    params: dict[str, Any] = {}
    not_saved: list[str] = []
    for name, value in estimator.get_params(deep=False).items():
        try:
            params[name] = _encode(value)
        except _NotJSON:
            not_saved.append(name)
    tensors: dict[str, torch.Tensor] = {}
    for name, value in estimator.module_.state_dict().items():
        tensors[f"module_.{name}"] = value.detach().cpu().clone()
    fitted: dict[str, Any] = {}
    for name, value in vars(estimator).items():
        if not name.endswith("_") or name.startswith("_"):
            continue
        if name in _SPECIAL or name in _DERIVED:
            continue
        if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            tensors[f"attr.{name}"] = torch.from_numpy(np.ascontiguousarray(value))
            continue
        try:
            fitted[name] = _encode(value)
        except _NotJSON as exc:
            raise ValueError(
                f"Cannot save fitted attribute {name!r} of type "
                f"{type(value).__name__} without pickling; use joblib/pickle for "
                "this model."
            ) from exc
    try:
        tasks = _tasks_meta(estimator.tasks_)
    except _NotJSON as exc:
        raise ValueError(
            "Cannot save class labels that are not numbers, booleans or strings; "
            "use joblib/pickle for this model."
        ) from exc
    history = dataclasses.asdict(estimator.history_)
    history.pop("best_state", None)
    try:
        history = {k: _encode(v) for k, v in history.items()}
    except _NotJSON as exc:
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
    payload = {
        "format": FORMAT_NAME,
        "metadata": metadata,
        "tensors": tensors,
        "sha256": _digest(metadata, tensors),
    }
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".yoto-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------- load
def _major(version: str) -> int | None:
    m = re.match(r"\s*(\d+)", str(version))
    return int(m.group(1)) if m else None


def read_payload(path: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read, verify and return ``(metadata, tensors)`` of a model file.

    Raises
    ------
    ValueError
        If the file is not a readable YOTO model file, fails its checksum, or comes
        from an incompatible format or a newer major package version.
    """
    from . import __version__

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No model file at {path!r}.")
    try:
        with warnings.catch_warnings():
            # a pickle with a newer protocol is refused below anyway
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, ...
        raise ValueError(
            f"{path!r} is not a readable YOTO model file (truncated, corrupted, not a "
            f"torch archive, or it holds Python objects that are not loaded for "
            f"safety): {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise ValueError(
            f"{path!r} is not a YOTO model file (no {FORMAT_NAME!r} format marker)."
        )
    metadata, tensors, digest = (
        payload.get("metadata"),
        payload.get("tensors"),
        payload.get("sha256"),
    )
    if (
        not isinstance(metadata, str)
        or not isinstance(tensors, dict)
        or not all(isinstance(t, torch.Tensor) for t in tensors.values())
        or not isinstance(digest, str)
    ):
        raise ValueError(f"{path!r} is a damaged YOTO model file (missing parts).")
    if _digest(metadata, tensors) != digest:
        raise ValueError(
            f"{path!r} failed its SHA-256 check: the model file was modified or "
            "corrupted after it was saved."
        )
    meta = json.loads(metadata)
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path!r} uses model format version {version}, but this yoto-sklearn "
            f"({__version__}) reads version {FORMAT_VERSION} only"
            + (
                "; upgrade yoto-sklearn to load it."
                if isinstance(version, int) and version > FORMAT_VERSION
                else "."
            )
        )
    saved = meta.get("versions", {}).get("yoto_sklearn", "")
    saved_major, ours = _major(saved), _major(__version__)
    if saved_major is None or (ours is not None and saved_major > ours):
        raise ValueError(
            f"{path!r} was saved by yoto-sklearn {saved!r}, a newer major version "
            f"than the installed {__version__}; upgrade yoto-sklearn to load it."
        )
    return meta, tensors


def _build_module(meta: dict, tensors: dict[str, torch.Tensor]) -> PanelNetwork:
    def linear(prefix: str) -> nn.Linear:
        return _linear_from(
            tensors[f"module_.{prefix}.weight"], tensors[f"module_.{prefix}.bias"]
        )

    shape = meta["module"]
    linears = [linear(f"linears.{i}") for i in range(shape["n_linears"])]
    heads = [linear(f"heads.{j}") for j in range(shape["n_heads"])]
    module = PanelNetwork(linears, heads)
    module.eval()
    return module


def load_model(cls: type, path: str | os.PathLike) -> Any:
    """Rebuild a fitted estimator of class ``cls`` from a model file.

    Raises
    ------
    ValueError
        See :func:`read_payload`; also if the file holds a different estimator class.
    """
    meta, tensors = read_payload(path)
    if meta.get("class") != cls.__name__:
        raise ValueError(
            f"{os.fspath(path)!r} holds a {meta.get('class')!r} model, not "
            f"{cls.__name__!r}."
        )
    try:
        params = {k: _decode(v) for k, v in meta["params"].items()}
        valid = cls().get_params(deep=False)
        estimator = cls(**{k: v for k, v in params.items() if k in valid})
        for name, value in meta["fitted"].items():
            setattr(estimator, name, _decode(value))
        for key, value in tensors.items():
            if key.startswith("attr."):
                setattr(estimator, key[len("attr.") :], value.numpy().copy())
        tasks = []
        for t in meta["tasks"]:
            classes = None if t["classes"] is None else _decode(t["classes"])
            counts = None if t["class_counts"] is None else _decode(t["class_counts"])
            tasks.append(
                TaskSpec(
                    t["name"],
                    t["kind"],
                    classes=classes,
                    mean=t["mean"],
                    std=t["std"],
                    class_counts=counts,
                )
            )
        estimator.tasks_ = tasks
        if len(tasks) == 1:
            estimator.classes_ = tasks[0].classes
        else:
            estimator.classes_ = [
                t.classes if t.kind == CLASSIFICATION else None for t in tasks
            ]
        known = {f.name for f in dataclasses.fields(History)}
        estimator.history_ = History(
            **{k: _decode(v) for k, v in meta["history"].items() if k in known}
        )
        estimator.module_ = _build_module(meta, tensors)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(
            f"{os.fspath(path)!r} passed its checksum but its content does not "
            f"describe a {cls.__name__} ({type(exc).__name__}: {exc})."
        ) from exc
    return estimator
