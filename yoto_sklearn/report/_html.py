"""One self-contained HTML page from a report's numbers (no network, no CDN)."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from typing import Any

from .._targets import has_classes
from ._assets import CSS, JS
from ._figures import (
    budget_svg,
    confusion_svg,
    dots_svg,
    matplotlib_available,
    stability_svg,
    training_svg,
)

DATA_ID = "yoto-report-data"
COMPARISON_SCHEMA = "yoto-sklearn panel comparison 1"
METRIC_KEYS = {True: ("f1_macro", "accuracy"), False: ("r2", "mae")}


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any, digits: int = 3) -> str:
    """Numbers as the page shows them (the JSON keeps them in full)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            f"{value:.{digits}g}"
            if abs(value) >= 1e4 or 0 < abs(value) < 1e-3
            else f"{value:.{digits}f}"
        )
    return str(value)


def json_script(data: Any) -> str:
    """The data as a JSON script element (``</`` escaped so it cannot end it)."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    text = text.replace("</", "<\\/").replace("<!--", "<\\!--")
    return f'<script type="application/json" id="{DATA_ID}">{text}</script>'


def table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    table_id: str | None = None,
    sortable: bool = False,
    row_class: Callable[[Sequence[Any]], str] | None = None,
) -> str:
    """An HTML table; numeric columns right-aligned (they sort as numbers)."""
    attrs = f' id="{esc(table_id)}"' if table_id else ""
    attrs += ' class="sortable"' if sortable else ""
    out = [f"<table{attrs}><thead><tr>"]
    numeric = [
        all(
            isinstance(r[i], int | float) and not isinstance(r[i], bool) or r[i] is None
            for r in rows
        )
        and any(r[i] is not None for r in rows)
        for i in range(len(columns))
    ]
    for name, num in zip(columns, numeric, strict=True):
        out.append(f'<th{" class=num" if num else ""} scope="col">{esc(name)}</th>')
    out.append("</tr></thead><tbody>")
    for row in rows:
        cls = row_class(row) if row_class else ""
        out.append(f"<tr{f' class={cls}' if cls else ''}>")
        for value, num in zip(row, numeric, strict=True):
            if num:
                out.append(f'<td class="num">{esc(fmt(value))}</td>')
            else:
                out.append(f"<td>{esc(fmt(value))}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{esc(caption)}</figcaption></figure>"


def page(
    title: str, nav: Sequence[tuple[str, str]], header: str, body: str, data: Any
) -> str:
    links = "".join(f'<a href="#{esc(i)}">{esc(n)}</a>' for i, n in nav)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<header>{header}</header><nav>{links}</nav><main>{body}</main>"
        f"{json_script(data)}<script>{JS}</script></body></html>\n"
    )


# ------------------------------------------------------------------ sections


def _panel(data: dict[str, Any]) -> str:
    panel = data["panel"]
    names = {
        "mean_expression": "mean expression",
        "fraction_expressing": "fraction expressing",
        "top_class": f"top class ({panel['by_class']['task']})"
        if panel.get("by_class")
        else "top class",
    }
    columns = [names.get(c, c) for c in panel["columns"]]
    required = panel["columns"].index("required")
    k = len(panel["rows"])
    design = data["design"]
    notes = [
        f"{len(design['required'])} required (bold; placed, not ranked)"
        if design["required"]
        else "no required genes",
        f"{len(design['excluded'])} excluded"
        if design["excluded"]
        else "none excluded",
    ]
    if design.get("expression_window"):
        low, high = design["expression_window"]
        notes.append(f"expression window [{fmt(low)}, {fmt(high)}]")
    cells = data["summary"]["cells"]
    parts = [
        '<section id="panel"><h2>Panel</h2>',
        f'<p class="note">{k} genes, best first. Expression statistics on the '
        f"{data['summary']['n_cells']} {esc(cells)}; fraction expressing: value "
        f"&gt; 0. Design: {esc('; '.join(notes))}. Click a column to sort.</p>",
        '<input class="filter" type="search" placeholder="Filter genes, classes..." '
        'data-table="panel-table" data-count="panel-count" aria-label="filter">'
        f' <span class="note">showing <span id="panel-count">{k}</span> of {k}</span>',
        '<div class="scroll">',
        table(
            columns,
            panel["rows"],
            table_id="panel-table",
            sortable=True,
            row_class=lambda r: "required" if r[required] else "",
        ),
        "</div>",
    ]
    if design["excluded"]:
        parts.append(
            f"<details><summary>{len(design['excluded'])} excluded genes</summary>"
            f"<p>{esc(', '.join(design['excluded']))}</p></details>"
        )
    parts.append("</section>")
    return "".join(parts)


def _metrics(data: dict[str, Any]) -> str:
    metrics = data.get("metrics")
    if not metrics:
        return ""
    summary = data["summary"]
    labels = metrics.get("baseline_labels") or {}
    shown = list(metrics.get("baselines") or {})
    columns = ["task", "type", "metric", "YOTO (this panel)"]
    columns += [labels.get(b, b) for b in shown]
    rows = []
    for task, kind in zip(summary["tasks"], summary["task_types"], strict=True):
        for key in METRIC_KEYS[has_classes(kind)]:
            row = [task, kind, key, metrics["yoto"].get(task, {}).get(key)]
            row += [metrics["baselines"][b].get(task, {}).get(key) for b in shown]
            rows.append(row)
    return (
        '<section id="metrics"><h2>Per-task metrics</h2>'
        f'<p class="note">On {esc(metrics["cells"])}. f1_macro: macro-averaged F1 '
        "over the classes present; r2 on the regression targets; mae in the "
        "target's units.</p>"
        + table(columns, rows, table_id="metrics-table")
        + "</section>"
    )


def _figures_section(
    section_id: str, heading: str, note: str, items: list[tuple[str, str]]
) -> str:
    if not items:
        return ""
    if not matplotlib_available():
        body = (
            '<p class="note">Pictures need matplotlib '
            '(pip install "yoto-sklearn[plot]").</p>'
        )
    else:
        body = (
            '<div class="figures">' + "".join(figure(s, c) for s, c in items) + "</div>"
        )
    return (
        f'<section id="{section_id}"><h2>{esc(heading)}</h2>'
        f'<p class="note">{esc(note)}</p>{body}</section>'
    )


def _draw(fn: Callable[..., str], *args: Any) -> str:
    return fn(*args) if matplotlib_available() else ""


def _pictures(data: dict[str, Any]) -> list[str]:
    cells = data["summary"]["cells"]
    out = [
        _figures_section(
            "confusion",
            "Confusion matrices",
            f"Rows: true class (n cells), columns: predicted; {cells}.",
            [
                (_draw(confusion_svg, t, v, cells), f"{t}")
                for t, v in data["confusion"].items()
            ],
        ),
        _figures_section(
            "expression",
            "Panel expression per class",
            "Dot size: fraction of the class's cells detecting the gene; colour: "
            "the class's mean expression scaled per gene. Genes grouped by the "
            "class they mark.",
            [(_draw(dots_svg, t, v), t) for t, v in data["dots"].items()],
        ),
    ]
    if data.get("training"):
        out.append(
            _figures_section(
                "training",
                "Training",
                data["training"].get("note") or "",
                [(_draw(training_svg, data["training"]), "loss per epoch")],
            )
        )
    if data.get("stability"):
        st = data["stability"]
        out.append(
            _figures_section(
                "stability",
                "Stability",
                f"Selection frequency of each gene over {st['n_runs']} refits on "
                f"subsamples; mean pairwise Jaccard {fmt(st['mean_jaccard'], 2)}.",
                [(_draw(stability_svg, st), "selection frequency")],
            )
        )
    return out


def _budget(data: dict[str, Any]) -> str:
    budget = data.get("budget")
    if not budget:
        return ""
    rows = [
        ["expression budget", budget.get("expression_budget")],
        ["panel total (mean per cell, fitting cells)", budget.get("panel_total")],
        ["share of the budget used", budget.get("fraction_used")],
    ]
    largest = budget.get("largest")
    if largest:
        rows.append(["most expressed panel gene", f"{largest['gene']} "
                     f"({fmt(largest['mean_expression'])})"])  # fmt: skip
    cells = budget.get("cells")
    if cells:
        rows += [
            ["panel total, mean over the report's cells", cells["mean_total"]],
            ["panel total, 95th percentile of cells", cells["q95_total"]],
        ]
    note = (
        "The budget bounds the sum over the panel of each gene's mean expression "
        "per cell (the mean total of a cell), on the cells the model was fitted on."
    )
    body = table(["", "value"], rows, table_id="budget-table")
    if cells and matplotlib_available():
        body += '<div class="figures">' + figure(
            budget_svg(budget), "panel total per cell"
        ) + "</div>"  # fmt: skip
    return (
        f'<section id="budget"><h2>Budget use</h2><p class="note">{esc(note)}</p>'
        f"{body}</section>"
    )


def _evaluator(data: dict[str, Any]) -> str:
    ev = data.get("evaluator")
    if not ev:
        return ""
    return (
        '<section id="evaluator"><h2>Evaluator metrics</h2><p class="note">spapros '
        "ProbesetEvaluator metric families on this panel.</p>"
        + table(ev["columns"], ev["rows"], table_id="evaluator-table")
        + "</section>"
    )


def _provenance(data: dict[str, Any]) -> str:
    prov = data["provenance"]
    parts = ['<section id="reproduce"><h2>Reproduce</h2>']
    if prov.get("command"):
        parts.append(f"<p>Command:</p><pre>{esc(prov['command'])}</pre>")
    facts = [
        [k, prov[k]]
        for k in (
            "data",
            "seed",
            "n_train",
            "n_test",
            "fit_seconds",
            "n_iter",
            "device",
        )
        if k in prov
    ]
    if facts:
        parts.append(
            table(
                ["", "value"],
                [[k, v if isinstance(v, int | float) else str(v)] for k, v in facts],
            )
        )
    params = [[k, json.dumps(v)] for k, v in sorted(prov["params"].items())]
    parts.append("<details><summary>Estimator parameters</summary>")
    parts.append(
        table(["parameter", "value"], params, table_id="params-table") + "</details>"
    )
    versions = [[k, v or "not installed"] for k, v in prov["versions"].items()]
    parts.append("<details><summary>Versions</summary>")
    parts.append(table(["package", "version"], versions) + "</details>")
    parts.append(
        f'<p class="note">Created {esc(data["created"])}. The numbers on this page '
        f"are in the <code>{DATA_ID}</code> JSON element of its source.</p></section>"
    )
    return "".join(parts)


def render(data: dict[str, Any]) -> str:
    """The report page of one panel."""
    s = data["summary"]
    header = (
        f"<h1>{esc(data['title'])}</h1><p>{s['k']} genes chosen from {s['n_genes']} "
        f"for {len(s['tasks'])} task(s): "
        + esc(
            ", ".join(
                f"{t} ({k})" for t, k in zip(s["tasks"], s["task_types"], strict=True)
            )
        )
        + f". Numbers on {s['n_cells']} {esc(s['cells'])}.</p>"
    )
    sections = [
        _panel(data),
        _metrics(data),
        *_pictures(data),
        _budget(data),
        _evaluator(data),
        _provenance(data),
    ]
    body = "".join(sections)
    titles = [
        ("panel", "Panel"), ("metrics", "Metrics"), ("confusion", "Confusion"),
        ("expression", "Expression"), ("training", "Training"),
        ("stability", "Stability"), ("budget", "Budget"),
        ("evaluator", "Evaluator"), ("reproduce", "Reproduce"),
    ]  # fmt: skip
    nav = [(i, n) for i, n in titles if f'<section id="{i}">' in body]
    return page(data["title"], nav, header, body, data)


# ---------------------------------------------------------------- comparison


def overlap(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Shared and own genes of two reports' panels."""
    ga = [r[1] for r in a["panel"]["rows"]]
    gb = [r[1] for r in b["panel"]["rows"]]
    shared = [g for g in ga if g in set(gb)]
    union = len(set(ga) | set(gb))
    return {
        "shared": shared,
        "only_a": [g for g in ga if g not in set(gb)],
        "only_b": [g for g in gb if g not in set(ga)],
        "jaccard": len(shared) / union if union else 0.0,
    }


def render_comparison(
    a: dict[str, Any], b: dict[str, Any], names: Sequence[str]
) -> str:
    """Two panels side by side: overlap, per-gene ranks, per-task metrics."""
    common = overlap(a, b)
    data = {
        "schema": COMPARISON_SCHEMA,
        "names": list(names),
        "overlap": common,
        "reports": [a, b],
    }
    na, nb = (esc(n) for n in names)
    rank_a = {r[1]: r[0] for r in a["panel"]["rows"]}
    rank_b = {r[1]: r[0] for r in b["panel"]["rows"]}
    genes = list(dict.fromkeys([*rank_a, *rank_b]))
    rows = [
        [g, rank_a.get(g), rank_b.get(g), g in rank_a and g in rank_b] for g in genes
    ]
    metric_rows = []
    tasks = list(dict.fromkeys(a["summary"]["tasks"] + b["summary"]["tasks"]))
    kinds = dict(zip(a["summary"]["tasks"], a["summary"]["task_types"], strict=True))
    kinds.update(zip(b["summary"]["tasks"], b["summary"]["task_types"], strict=True))
    for task in tasks:
        for key in METRIC_KEYS[has_classes(kinds[task])]:
            values = [
                ((d.get("metrics") or {}).get("yoto") or {}).get(task, {}).get(key)
                for d in (a, b)
            ]
            metric_rows.append([task, key, *values])
    header = (
        f"<h1>Panel comparison: {na} vs {nb}</h1><p>{len(common['shared'])} genes "
        f"shared; {len(common['only_a'])} only in {na}, "
        f"{len(common['only_b'])} only in {nb}; Jaccard {common['jaccard']:.2f}.</p>"
    )
    body = (
        '<section id="overlap"><h2>Genes</h2>'
        '<input class="filter" type="search" placeholder="Filter genes..." '
        'data-table="compare-table" data-count="compare-count" aria-label="filter">'
        ' <span class="note">showing <span id="compare-count">'
        f"{len(rows)}</span> of {len(rows)}</span>"
        '<div class="scroll">'
        + table(
            ["gene", f"rank in {names[0]}", f"rank in {names[1]}", "in both"],
            rows,
            table_id="compare-table",
            sortable=True,
        )
        + '</div></section><section id="metrics"><h2>Per-task metrics</h2>'
        f'<p class="note">{na}: on {esc(a["summary"]["cells"])}; {nb}: on '
        f"{esc(b['summary']['cells'])}. Compare only when the cells are the same.</p>"
        + table(
            ["task", "metric", str(names[0]), str(names[1])],
            metric_rows,
            table_id="compare-metrics",
        )
        + "</section>"
    )
    for name, d in zip(names, (a, b), strict=True):
        body += (
            f"<section><h2>{esc(name)}</h2><p>{d['summary']['k']} genes; created "
            f"{esc(d['created'])}; data "
            f"{esc(d['provenance'].get('data', 'not recorded'))}.</p>"
            + (
                f"<pre>{esc(d['provenance']['command'])}</pre>"
                if d["provenance"].get("command")
                else ""
            )
            + "</section>"
        )
    return page(
        f"Panel comparison: {names[0]} vs {names[1]}",
        [("overlap", "Genes"), ("metrics", "Metrics")],
        header,
        body,
        data,
    )
