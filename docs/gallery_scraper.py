"""Show the figures the gallery examples build without pyplot.

yoto_sklearn's plotting functions return :class:`matplotlib.figure.Figure` objects
that pyplot does not know (no global figure registry), so sphinx-gallery's
matplotlib scraper, which asks pyplot for its figures, shows ``<Figure size ...>``
text instead of the picture. This scraper finds such figures among the example's
variables (also in dicts, as ``plot_confusion_matrices`` returns), saves each new
one once, and hands them to sphinx-gallery like its own scraper does.
"""

from __future__ import annotations

from typing import Any


def _figures(value: Any) -> list:
    from matplotlib.figure import Figure

    if isinstance(value, Figure):
        return [value]
    if isinstance(value, dict):
        return [v for v in value.values() if isinstance(v, Figure)]
    return []


def pyplot_free_scraper(block: Any, block_vars: dict, gallery_conf: dict) -> str:
    """A sphinx-gallery image scraper for figures built without pyplot."""
    from sphinx_gallery.scrapers import figure_rst

    seen = block_vars.setdefault("_yoto_seen_figures", set())
    paths = []
    for value in list(block_vars["example_globals"].values()):
        for fig in _figures(value):
            if id(fig) in seen:
                continue
            seen.add(id(fig))
            path = next(block_vars["image_path_iterator"])
            fig.savefig(path, dpi=90)
            paths.append(path)
    return figure_rst(paths, gallery_conf["src_dir"])
