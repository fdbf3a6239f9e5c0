"""The argument parser of ``yoto-sklearn``: argparse only, so ``--help`` is instant.

Nothing here imports numpy, pandas, torch, anndata or matplotlib; the commands
import what they need when they run.
"""

from __future__ import annotations

import argparse

PROG = "yoto-sklearn"
DEMO_TARGETS = ("bulk_labels", "phase", "S_score", "G2M_score")


class CLIError(Exception):
    """Bad input detected by the command line itself (one-line message)."""


def normalize_argv(argv: list[str]) -> list[str]:
    """``--binarize`` / ``--normalize-counts`` before a non-number take no value.

    ``--binarize [THRESHOLD]`` would otherwise swallow the next argument (the data
    file, say) as its threshold (and ``--normalize-counts [TARGET_SUM]`` likewise).
    """
    out = list(argv)
    bare = {
        "--binarize": "--binarize=0",
        "--normalize-counts": "--normalize-counts=1e4",
    }
    for i, token in enumerate(out[:-1]):
        if token in bare:
            try:
                float(out[i + 1])
            except ValueError:
                out[i] = bare[token]
    return out


def _soma_arguments(command: argparse.ArgumentParser, var: bool) -> None:
    """``--obs-filter`` (and ``--var-filter``), ``--measurement``: SOMA queries."""
    group = command.add_argument_group(
        "TileDB-SOMA experiment (DATA is its folder or URI)"
    )
    group.add_argument(
        "--obs-filter",
        metavar="EXPR",
        help="tiledbsoma value filter of the cells, e.g. \"tissue == 'lung'\" "
        "(is_primary_data == True is added when obs has that column)",
    )
    if var:
        group.add_argument(
            "--var-filter",
            metavar="EXPR",
            help="tiledbsoma value filter of the genes, e.g. "
            "\"feature_biotype == 'gene'\"",
        )
    group.add_argument(
        "--measurement", default="RNA", help="the measurement (default: RNA)"
    )
    group.add_argument(
        "--panel-layer",
        metavar="LAYER",
        help="an X layer with the same values tiled for panel reads "
        "(yoto_sklearn.soma.write_panel_layer): panel columns are read from it",
    )
    group.add_argument(
        "--tiledb-config",
        metavar="KEY=VALUE",
        action="append",
        type=_config_entry,
        help="a TileDB configuration entry, repeatable (the Census on S3: "
        "vfs.s3.region=us-west-2 and vfs.s3.no_sign_request=true); the command "
        "line is recorded in metrics.json, so leave credentials to the environment",
    )


def _config_entry(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _at_least_two(text: str) -> int:
    value = _positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(
            f"expected at least 2 runs (one run has nothing to compare with), got "
            f"{value}"
        )
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected 0 <= value < 1, got {value}")
    return value


def _quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="print nothing but errors (no progress bar, no tables)",
    )


def _common(parser: argparse.ArgumentParser, seed_default: int | None = 0) -> None:
    _quiet(parser)
    parser.add_argument(
        "--seed",
        type=int,
        default=seed_default,
        help="random seed for the split and the training (default: %(default)s)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="torch device to train on: auto (GPU if available), cpu, cuda, "
        "cuda:1, mps... (default: %(default)s)",
    )


def _training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-iter",
        type=_positive_int,
        metavar="N",
        default=None,
        help="maximum number of training epochs (default: the selector's)",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        metavar="TAU",
        default=None,
        help="final temperature of the relaxed top-k (default: the selector's)",
    )
    parser.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="any other YOTOSelector parameter, e.g. --set hidden_layer_sizes=(128,) "
        "--set dropout=0.2 (repeatable; VALUE is a Python literal)",
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``yoto-sklearn`` command.

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    from yoto_sklearn import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="YOTO (You Only Train Once): pick a panel of k genes that "
        "predicts cell labels, with one multi-task model trained once.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  yoto-sklearn demo\n"
        "  yoto-sklearn fit cells.h5ad --target cell_type --target phase --k 50 "
        "--out run/\n"
        "  yoto-sklearn predict run/ new_cells.h5ad --out predictions.csv\n"
        "  yoto-sklearn evaluate vendor.csv run/panel.csv cells.h5ad -t cell_type\n"
        "  yoto-sklearn report run/              # run/report.html\n"
        "  yoto-sklearn report run_a/ run_b/ --out compare.html\n\n"
        "Run 'yoto-sklearn COMMAND --help' for the options of a command.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo",
        help="train on real PBMC data (ships with scanpy) and compare to a baseline",
        description="Train one multi-task YOTO model on pbmc68k_reduced (700 PBMCs "
        "x 765 genes, log-normalised adata.raw; needs scanpy: pip install "
        '"yoto-sklearn[demo]"), print per-task test metrics next to '
        "SelectKBest(f_classif)+LogisticRegression at the same k, print the panel "
        "and write panel.csv, the model, metrics.json, PNGs and report.html (one "
        "self-contained page) to --out.",
    )
    demo.add_argument(
        "--out",
        default="yoto-demo",
        metavar="DIR",
        help="output folder (default: %(default)s)",
    )
    demo.add_argument(
        "--k", type=_positive_int, default=30, help="panel size (default: %(default)s)"
    )
    demo.add_argument(
        "--target",
        action="append",
        metavar="COL",
        help="obs column to predict (repeatable; default: "
        + " ".join(DEMO_TARGETS)
        + ")",
    )
    demo.add_argument(
        "--test-size",
        type=_fraction,
        metavar="FRACTION",
        default=0.25,
        help="fraction of cells held out for testing (default: %(default)s)",
    )
    _training_options(demo)
    _common(demo)

    fit = commands.add_parser(
        "fit",
        help="select a gene panel from your data",
        description="Fit YOTO on DATA and write panel.csv (gene, score, rank), "
        "gene_scores.csv (every gene), the model, metrics.json and PNGs to --out.",
    )
    fit.add_argument(
        "data",
        metavar="DATA",
        help=".h5ad file; .csv/.tsv[.gz] (header row, one row per cell, one column "
        "per gene, optional first column of cell names; label columns named with "
        "--target); a 10x Cell Ranger folder (matrix.mtx.gz, features.tsv.gz, "
        "barcodes.tsv.gz, or the v2 genes.tsv layout) or a 10x .h5 file "
        "(10x formats need scanpy); a TileDB-SOMA experiment (a local folder or a "
        "URI; needs yoto-sklearn[soma]), streamed, never loaded whole",
    )
    fit.add_argument(
        "--target",
        "-t",
        action="append",
        required=True,
        metavar="COL",
        help="obs column (or CSV column) to predict, one task each; repeat for "
        "several tasks. Text, categories, booleans and whole numbers with at most "
        "100 distinct values -> classification, other numbers -> regression "
        "(override with --categorical / --regression); empty/NaN -> missing label",
    )
    fit.add_argument(
        "--k", type=_positive_int, required=True, help="number of genes in the panel"
    )
    fit.add_argument(
        "--layer",
        help="fit on this .layers entry instead of X (a SOMA experiment: the X "
        "layer, default 'data'; the Census has 'raw' and 'normalized')",
    )
    fit.add_argument(
        "--use-raw", action="store_true", help="fit on .raw (X and gene names)"
    )
    fit.add_argument(
        "--categorical",
        action="append",
        metavar="COL",
        help="treat this --target as classification whatever its values (repeatable)",
    )
    fit.add_argument(
        "--regression",
        action="append",
        metavar="COL",
        help="treat this --target as regression, e.g. an integer quantity such as "
        "a count (repeatable)",
    )
    _soma_arguments(fit, var=True)
    design = fit.add_argument_group(
        "panel design",
        "constraints for a targeted assay; GENES is a comma-separated list of gene "
        "names or a file (one gene per line, or a CSV/TSV with a 'gene' column such "
        "as the panel.csv of an earlier run)",
    )
    design.add_argument(
        "--required-genes",
        metavar="GENES",
        help="genes that must be in the panel (e.g. a panel to extend); --k counts "
        "them",
    )
    design.add_argument(
        "--excluded-genes", metavar="GENES", help="genes never selected"
    )
    design.add_argument(
        "--exclude-pattern",
        metavar="REGEX",
        help="also exclude genes whose name matches this regular expression, e.g. "
        "'^MT-|^RP[SL]' for mitochondrial and ribosomal genes",
    )
    design.add_argument(
        "--min-mean-expression",
        type=float,
        metavar="X",
        help="exclude genes whose mean expression (of the fitted matrix) is below X",
    )
    design.add_argument(
        "--max-mean-expression",
        type=float,
        metavar="X",
        help="exclude genes whose mean expression is above X (very highly "
        "expressed genes crowd optical assays)",
    )
    design.add_argument(
        "--expression-budget",
        type=float,
        metavar="B",
        help="panel-level (optical crowding) budget: the panel genes' mean "
        "expressions per cell (of the fitted matrix) may sum to at most B; "
        "guaranteed on the panel (panel.csv and metrics.json show the use)",
    )
    design.add_argument(
        "--gene-penalties",
        metavar="FILE",
        help="CSV/TSV with a 'gene' and a 'weight' column (e.g. from a probe-design "
        "table): a gene with weight w must lower the training loss by about w to "
        "be chosen; genes not listed weigh 0",
    )
    design.add_argument(
        "--binarize",
        nargs="?",
        type=float,
        const=0.0,
        default=None,
        metavar="THRESHOLD",
        help="train and predict on detection (value > THRESHOLD, default 0) "
        "instead of expression, for the shift to a targeted platform",
    )
    design.add_argument(
        "--normalize-counts",
        nargs="?",
        type=float,
        const=1e4,
        default=None,
        metavar="TARGET_SUM",
        help="the matrix holds raw counts: train and predict on log1p of each cell "
        "scaled to sum to TARGET_SUM (default 10000), computed chunk by chunk and "
        "stored with the model",
    )
    design.add_argument(
        "--stability-runs",
        type=_at_least_two,
        metavar="N",
        default=None,
        help="refit N times on 80%% subsamples with other seeds; write each gene's "
        "selection frequency (stability.csv, selection_frequency.png)",
    )
    fit.add_argument(
        "--obs",
        metavar="FILE",
        help="CSV/TSV of cell labels (first column: cell names) joined to the "
        "data's obs, e.g. for a 10x folder",
    )
    fit.add_argument(
        "--test-size",
        type=_fraction,
        metavar="FRACTION",
        default=0.0,
        help="hold out this fraction of cells (stratified on the first "
        "classification target) and report metrics on them (default: 0, "
        "metrics on the training cells)",
    )
    fit.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder; the files of an earlier run there are replaced",
    )
    fit.add_argument(
        "--report",
        action="store_true",
        help="also write report.html: one self-contained page (panel table, "
        "metrics, pictures, parameters) to share; 'yoto-sklearn report DIR' "
        "writes it later",
    )
    _training_options(fit)
    _common(fit)

    predict = commands.add_parser(
        "predict",
        help="predict labels of new cells with a fitted model",
        description="Apply a model written by 'fit' or 'demo' to DATA. Only the "
        "panel genes are read; a panel gene missing from DATA is an error.",
    )
    predict.add_argument(
        "model",
        metavar="MODEL",
        help="output folder of 'fit'/'demo', or the model file in it",
    )
    predict.add_argument("data", metavar="DATA", help="cells to predict (as for fit)")
    predict.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="predictions file, .csv or .tsv: one row per cell, one column per "
        "task (+ <task>_probability for classification tasks)",
    )
    predict.add_argument(
        "--layer",
        default=None,
        metavar="LAYER",
        help="read this layer (default: as recorded at fit; '' for X)",
    )
    _soma_arguments(predict, var=False)
    predict.add_argument(
        "--use-raw",
        dest="use_raw",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="read .raw (default: as recorded at fit)",
    )
    _quiet(predict)

    evaluate = commands.add_parser(
        "evaluate",
        help="score gene panels (yours, a vendor's, YOTO's) on held-out cells",
        description="Hold out cells of DATA and score each PANEL on them: YOTO's "
        "heads trained on the panel and a LogisticRegression (Ridge) refit per "
        "--target, and, when spapros is installed, spapros's ProbesetEvaluator "
        "metric families (cell-type recovery, variation recovery, redundancy). "
        "Several panels are scored side by side on the same split.",
    )
    evaluate.add_argument(
        "panels",
        nargs="+",
        metavar="PANEL",
        help="a gene list: a file (one gene per line, or a CSV/TSV with a 'gene' "
        "column such as a run's panel.csv) or a comma-separated list; named after "
        "the file (NAME=FILE to name it yourself)",
    )
    evaluate.add_argument("data", metavar="DATA", help="cells with labels (as for fit)")
    evaluate.add_argument(
        "--target",
        "-t",
        action="append",
        required=True,
        metavar="COL",
        help="obs column (or CSV column) to predict, one task each (repeatable)",
    )
    evaluate.add_argument("--layer", help="read this .layers entry instead of X")
    evaluate.add_argument("--use-raw", action="store_true", help="read .raw")
    evaluate.add_argument(
        "--test-size",
        type=_fraction,
        metavar="FRACTION",
        default=0.25,
        help="fraction of cells held out (default: %(default)s)",
    )
    evaluate.add_argument(
        "--no-spapros",
        action="store_true",
        help="leave out spapros's metric families (default: used when installed)",
    )
    evaluate.add_argument(
        "--forest-min-cells",
        type=_positive_int,
        metavar="N",
        default=40,
        help="minimum held-out cells of a cell type for spapros's forests "
        "(spapros's default: %(default)s)",
    )
    evaluate.add_argument(
        "--out", metavar="FILE", help="write the table here (.csv or .tsv)"
    )
    _training_options(evaluate)
    _common(evaluate)

    report = commands.add_parser(
        "report",
        help="write a run's report: one self-contained HTML page",
        description="Write the report of a 'fit' or 'demo' output folder (RUN/"
        "report.html by default): the panel table (sortable, filterable), "
        "per-task metrics next to the baselines, confusion matrices, dot plots, "
        "training curves, stability, and the parameters, data, versions and "
        "command of the run. It needs no network: send it as an attachment. With "
        "two runs, write one page comparing their panels and metrics.",
    )
    report.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="output folder of 'fit'/'demo' (or its report.json / report.html); "
        "two to compare",
    )
    report.add_argument(
        "--out",
        metavar="FILE",
        help="HTML file to write (default: RUN/report.html; for two runs "
        "panel_comparison.html)",
    )
    report.add_argument(
        "--names",
        nargs=2,
        metavar=("NAME_A", "NAME_B"),
        help="names of the two runs on a comparison page (default: folder names)",
    )
    _quiet(report)
    return parser
