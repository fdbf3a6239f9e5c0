"""Panel-design options of ``yoto-sklearn fit``: gene lists, patterns, limits."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._parser import CLIError
from .readers import TABLE_SUFFIXES, suffix

# A first row (or line) holding one of these names is a header, not a gene.
GENE_HEADERS = {"gene", "genes", "gene_name", "gene_names", "gene_symbol", "symbol"}
LIST_SUFFIXES = (".txt", ".csv", ".tsv", ".list")


def _looks_like_path(text: str) -> bool:
    lowered = text.lower().removesuffix(".gz")
    return "/" in text or "\\" in text or lowered.endswith(LIST_SUFFIXES)


def read_gene_list(text: str, option: str) -> list[str]:
    """Genes from a comma-separated list or a file.

    The rule for files: every line (row) is a gene, the first included, unless the
    first row names a gene column (``gene``, ``genes``, ``gene_name``,
    ``gene_symbol``, ``symbol``; any case), which is then a header. A CSV/TSV
    with several columns needs that header (``panel.csv`` of an earlier run has
    it); its other columns are ignored. Empty lines and lines starting with ``#``
    are skipped; a UTF-8 byte-order mark is dropped.

    Raises
    ------
    CLIError
        A path that is not a file, a file without genes, or several columns
        without a gene header.
    """
    path = Path(text)
    if not path.is_file():
        if path.is_dir():
            raise CLIError(f"{option}: {text} is a folder, not a gene list file")
        if _looks_like_path(text):
            raise CLIError(f"{option}: no such file: {text}")
        genes = [g.strip() for g in text.split(",") if g.strip()]
        if not genes:
            raise CLIError(f"{option} is empty")
        return genes
    lines = [
        line
        for line in path.read_text(encoding="utf-8-sig").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    kind = suffix(path)
    sep = TABLE_SUFFIXES.get(kind) if kind in (".csv", ".tsv") else None
    rows = [[cell.strip().strip('"') for cell in line.split(sep)] for line in lines]
    column = 0
    if rows and any(cell.lower() in GENE_HEADERS for cell in rows[0]):
        column = next(i for i, c in enumerate(rows[0]) if c.lower() in GENE_HEADERS)
        rows = rows[1:]
    elif rows and max(len(r) for r in rows) > 1:
        raise CLIError(
            f"{option} file {path.name} has several columns and no 'gene' column "
            "header; name the column of genes 'gene', or list one gene per line"
        )
    genes = [r[column] for r in rows if len(r) > column and r[column]]
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
    budget = getattr(args, "expression_budget", None)
    if budget is not None:
        params["expression_budget"] = budget
    if getattr(args, "gene_penalties", None) is not None:
        params["gene_penalties"] = read_penalties(Path(args.gene_penalties), names)
    low = getattr(args, "min_mean_expression", None)
    high = getattr(args, "max_mean_expression", None)
    if low is not None or high is not None:
        params["expression_window"] = (low, high)
    if getattr(args, "binarize", None) is not None:
        threshold = args.binarize
        if threshold < 0:
            raise CLIError(f"--binarize threshold must be >= 0, got {threshold}")
        params["binarize"] = True if threshold == 0 else threshold
    target_sum = getattr(args, "normalize_counts", None)
    if target_sum is not None:
        if not target_sum > 0:
            raise CLIError(f"--normalize-counts must be > 0, got {target_sum}")
        params["normalize_counts"] = target_sum
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


def read_penalties(path: Path, names: set[str]) -> dict[str, float]:
    """``--gene-penalties``: a CSV/TSV with ``gene`` and ``weight`` columns.

    Raises
    ------
    CLIError
        A missing file or column, a gene not in the data, a duplicated gene, a
        weight that is not a finite number >= 0.
    """
    from .readers import table_separator

    flag = "--gene-penalties"
    if not path.is_file():
        raise CLIError(f"{flag}: no such file: {path}")
    try:
        table = pd.read_csv(path, sep=table_separator(path), dtype={"gene": str})
    except (ValueError, pd.errors.ParserError) as exc:
        raise CLIError(f"{flag} {path.name}: not a readable table ({exc})") from None
    columns = {str(c).strip().lower(): c for c in table.columns}
    missing = [c for c in ("gene", "weight") if c not in columns]
    if missing:
        raise CLIError(
            f"{flag} {path.name} needs columns 'gene' and 'weight'; missing "
            f"{missing} (found {list(table.columns)[:5]})"
        )
    genes = table[columns["gene"]].astype(str).str.strip()
    weights = pd.to_numeric(table[columns["weight"]], errors="coerce")
    bad = weights.isna() | ~np.isfinite(weights) | (weights < 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise CLIError(
            f"{flag} {path.name}: the weight of {genes.iloc[row]!r} is "
            f"{table[columns['weight']].iloc[row]!r}; weights are numbers >= 0"
        )
    dup = genes[genes.duplicated()]
    if len(dup):
        raise CLIError(f"{flag} {path.name} lists {dup.iloc[0]!r} more than once")
    unknown = [g for g in genes if g not in names]
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise CLIError(f"{flag}: gene {unknown[0]!r}{more} is not in the data")
    return dict(zip(genes, weights.astype(float), strict=True))


def merge_options(params: dict[str, Any], options: dict[str, Any], flags: dict) -> None:
    """Add the values of dedicated options; refuse one given by --set as well."""
    for key, value in options.items():
        if key in params:
            raise CLIError(
                f"{key} given twice: by {flags.get(key, '--' + key.replace('_', '-'))}"
                f" and by --set {key}=...; keep one"
            )
        params[key] = value
