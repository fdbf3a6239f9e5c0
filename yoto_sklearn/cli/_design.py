"""Panel-design options of ``yoto-sklearn fit``: gene lists, patterns, limits."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ._parser import CLIError
from .readers import TABLE_SUFFIXES, suffix


def read_gene_list(text: str, option: str) -> list[str]:
    """Genes from a comma-separated list or a file.

    A file holds one gene per line (``.txt`` or no suffix), or is a CSV/TSV with a
    ``gene`` column (the ``panel.csv`` of an earlier run) or a single column.
    """
    path = Path(text)
    if not path.is_file():
        genes = [g.strip() for g in text.split(",") if g.strip()]
        if not genes:
            raise CLIError(f"{option} is empty")
        return genes
    kind = suffix(path)
    if kind in (".csv", ".tsv"):
        table = pd.read_csv(path, sep=TABLE_SUFFIXES[kind], dtype=str)
        if "gene" in table.columns:
            column = table["gene"]
        elif table.shape[1] == 1:
            column = table.iloc[:, 0]
        else:
            raise CLIError(
                f"{option} file {path.name} has several columns and none is 'gene'"
            )
        genes = [str(g).strip() for g in column.dropna()]
    else:
        lines = path.read_text().splitlines()
        genes = [g.strip() for g in lines if g.strip() and not g.startswith("#")]
    if not genes:
        raise CLIError(f"{option} file {path.name} lists no gene")
    return genes


def design_params(args: argparse.Namespace, gene_names: pd.Index) -> dict[str, Any]:
    """YOTOSelector parameters from the panel-design options."""
    params: dict[str, Any] = {}
    names = set(gene_names.astype(str))
    for option, key in (
        ("required_genes", "required_genes"),
        ("excluded_genes", "excluded_genes"),
    ):
        text = getattr(args, option, None)
        if text is None:
            continue
        flag = "--" + option.replace("_", "-")
        genes = read_gene_list(text, flag)
        unknown = [g for g in genes if g not in names]
        if unknown:
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise CLIError(f"{flag}: gene {unknown[0]!r}{more} is not in the data")
        params[key] = list(dict.fromkeys(genes))
    pattern = getattr(args, "exclude_pattern", None)
    if pattern is not None:
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise CLIError(f"--exclude-pattern {pattern!r}: {exc}") from None
        matched = [g for g in gene_names.astype(str) if regex.search(g)]
        required = set(params.get("required_genes", []))
        extra = [g for g in matched if g not in required]
        params["excluded_genes"] = list(
            dict.fromkeys(params.get("excluded_genes", []) + extra)
        )
    low = getattr(args, "min_mean_expression", None)
    high = getattr(args, "max_mean_expression", None)
    if low is not None or high is not None:
        params["expression_window"] = (low, high)
    if getattr(args, "binarize", None) is not None:
        threshold = args.binarize
        if threshold < 0:
            raise CLIError(f"--binarize threshold must be >= 0, got {threshold}")
        params["binarize"] = True if threshold == 0 else threshold
    return params


def stability_table(var: pd.DataFrame, key: str = "yoto") -> pd.DataFrame:
    """The stability columns written by ``select_genes``, most frequent first."""
    table = pd.DataFrame(
        {
            "frequency": var[f"{key}_frequency"].to_numpy(),
            "consensus": var[f"{key}_consensus"].to_numpy(dtype=bool),
            "selected": var[f"{key}_selected"].to_numpy(dtype=bool),
        },
        index=pd.Index(var.index.astype(str), name="gene"),
    )
    return table.sort_values(["frequency", "consensus"], ascending=False, kind="stable")
