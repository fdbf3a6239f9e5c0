"""Command line: ``yoto-sklearn demo | fit | predict | evaluate | report``.

Run ``yoto-sklearn --help`` (or ``python -m yoto_sklearn --help``) for the options.
Bad input ends with a one-line ``yoto-sklearn: error: ...`` on stderr and exit status
1 (2 for unusable command-line syntax).

One module per concern: ``_parser`` (arguments; imports nothing heavy, so ``--help``
is instant), ``readers`` (files to AnnData), ``_commands`` (demo / fit / predict),
``_report`` (metrics, baseline, tables), ``_outputs`` (what a run writes,
including ``report.json`` for the HTML report of :mod:`yoto_sklearn.report`).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from typing import Any

from ._parser import PROG, CLIError, build_parser, normalize_argv

__all__ = ["main", "build_parser", "read_data", "CLIError"]


def __getattr__(name: str) -> Any:
    if name == "read_data":  # keeps ``from yoto_sklearn.cli import read_data`` light
        from .readers import read_data

        return read_data
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``yoto-sklearn`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 1 for bad input (a one-line message on stderr), 2 for
        bad command-line syntax.
    """
    parser = build_parser()
    args = parser.parse_args(normalize_argv(sys.argv[1:] if argv is None else argv))
    try:
        from ._commands import (
            cmd_demo,
            cmd_evaluate,
            cmd_fit,
            cmd_predict,
            cmd_report,
        )

        handlers = {
            "demo": cmd_demo,
            "fit": cmd_fit,
            "predict": cmd_predict,
            "evaluate": cmd_evaluate,
            "report": cmd_report,
        }
        words = sys.argv[1:] if argv is None else list(argv)
        args.command_line = shlex.join([PROG, *words])
        return handlers[args.command](args)
    except (CLIError, ValueError, TypeError, OSError, ImportError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
    except Exception as exc:  # every failure is one line and exit 1
        message = " ".join(str(exc).split())
        print(
            f"{PROG}: error: {type(exc).__name__}: {message} (unexpected: please "
            "report it with the command you ran)",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
