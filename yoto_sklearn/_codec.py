"""JSON values that round-trip exactly, and strict readers of decoded values.

Model files store their metadata as strict JSON (no NaN, no pickles); these helpers
encode numpy arrays, tuples, dicts and non-finite floats so that decoding gives back
exactly what was encoded, and check every decoded value's type and range. Anything
malformed is an :class:`Invalid` error naming the field.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

ARRAY_KINDS = "biufU"


class NotJSON(Exception):
    pass


class Invalid(ValueError):
    """A model file whose content does not describe a fitted estimator."""


# ----------------------------------------------------------------- JSON values
def encode(value: Any) -> Any:
    """A JSON-able form of ``value`` that :func:`decode` inverts exactly."""
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
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise NotJSON(value)
        return {"__dict__": {k: encode(v) for k, v in value.items()}}
    if isinstance(value, np.ndarray):
        return encode_array(value)
    raise NotJSON(value)


def encode_array(arr: np.ndarray) -> dict:
    if arr.dtype.kind in ARRAY_KINDS:
        items = [encode(v) for v in arr.ravel().tolist()]
        return {"__ndarray__": items, "dtype": arr.dtype.str, "shape": list(arr.shape)}
    if arr.dtype == object:
        items = []
        for v in arr.ravel():
            if isinstance(v, np.generic):
                v = v.item()
            if not (v is None or isinstance(v, bool | int | float | str)):
                raise NotJSON(arr)
            items.append(encode(v))
        return {"__ndarray__": items, "dtype": "object", "shape": list(arr.shape)}
    raise NotJSON(arr)


def decode(value: Any, where: str = "metadata") -> Any:
    """Invert :func:`encode`; anything malformed is an :class:`Invalid`."""
    if isinstance(value, list):
        return [decode(v, where) for v in value]
    if not isinstance(value, dict):
        return value
    if "__float__" in value:
        text = value["__float__"]
        if text not in ("nan", "inf", "-inf"):
            raise Invalid(f"{where}: bad non-finite float {text!r}")
        return float(text)
    if "__tuple__" in value:
        return tuple(decode(expect(value["__tuple__"], list, where), where))
    if "__dict__" in value:
        items = expect(value["__dict__"], dict, where)
        return {k: decode(v, f"{where}.{k}") for k, v in items.items()}
    if "__ndarray__" in value:
        return decode_array(value, where)
    raise Invalid(f"{where}: unexpected JSON object {sorted(value)[:5]}")


def decode_array(value: dict, where: str) -> np.ndarray:
    items = expect(value.get("__ndarray__"), list, where)
    shape = expect(value.get("shape"), list, where)
    dtype_text = expect(value.get("dtype"), str, where)
    if not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
    ):
        raise Invalid(f"{where}: bad array shape {shape}")
    if int(np.prod(shape)) != len(items):
        raise Invalid(f"{where}: {len(items)} values for an array of shape {shape}")
    values = [decode(v, where) for v in items]
    if not all(v is None or isinstance(v, bool | int | float | str) for v in values):
        raise Invalid(f"{where}: array items must be numbers, booleans or strings")
    if dtype_text == "object":
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out.reshape(shape)
    try:
        dtype = np.dtype(dtype_text)
    except TypeError as exc:
        raise Invalid(f"{where}: unknown dtype {dtype_text!r}") from exc
    if dtype.kind not in ARRAY_KINDS:
        raise Invalid(f"{where}: dtype {dtype_text!r} is not allowed")
    try:
        return np.array(values, dtype=dtype).reshape(shape)
    except (TypeError, ValueError, OverflowError) as exc:
        raise Invalid(f"{where}: values do not fit dtype {dtype_text!r}") from exc


def expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = (
            kind.__name__
            if isinstance(kind, type)
            else "/".join(k.__name__ for k in kind)
        )
        raise Invalid(f"{where} must be {names}, got {type(value).__name__}")
    return value


def as_int(value: Any, where: str, low: int = 0, high: int | None = None) -> int:
    expect(value, int, where)
    if value < low or (high is not None and value > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise Invalid(f"{where} must be in {bound}, got {value}")
    return value


def as_float(value: Any, where: str, finite: bool = False) -> float:
    expect(value, (int, float), where)
    if isinstance(value, bool) or (finite and not np.isfinite(value)):
        raise Invalid(f"{where} must be a finite number, got {value!r}")
    return float(value)


def as_floats(value: Any, where: str, optional: bool = False) -> list[float] | None:
    if value is None and optional:
        return None
    return [
        as_float(v, f"{where}[{i}]") for i, v in enumerate(expect(value, list, where))
    ]


def as_strs(value: Any, where: str, n: int | None = None) -> list[str]:
    items = list(expect(value, list | np.ndarray, where))
    if not all(isinstance(v, str) for v in items):
        raise Invalid(f"{where} must hold strings only")
    if n is not None and len(items) != n:
        raise Invalid(f"{where} has {len(items)} entries, expected {n}")
    if len(set(items)) != len(items):
        raise Invalid(f"{where} has duplicate entries")
    return items
