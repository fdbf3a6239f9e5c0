"""Sphinx configuration: API reference (numpydoc), gallery (sphinx-gallery), Markdown.

Build from the repository root with::

    python -m sphinx -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

import yoto_sklearn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gallery_scraper import pyplot_free_scraper  # noqa: E402

project = "yoto-sklearn"
author = "yoto-sklearn developers"
copyright = "2026, yoto-sklearn developers"  # noqa: A001
release = yoto_sklearn.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]
templates_path = ["_templates"]

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
myst_heading_anchors = 3
suppress_warnings = ["myst.xref_missing", "myst.header"]

# Links to the Python, numpy, scikit-learn and anndata docs need their inventories
# from the web: set YOTO_DOCS_INTERSPHINX=1 to fetch them (off by default, so an
# offline build is quiet).
intersphinx_mapping = {}
if os.environ.get("YOTO_DOCS_INTERSPHINX") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "anndata": ("https://anndata.readthedocs.io/en/stable", None),
    }

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    # pyplot's figures, and the pyplot-free ones yoto_sklearn.plotting returns
    "image_scrapers": ("matplotlib", pyplot_free_scraper),
}

html_theme = "pydata_sphinx_theme"
html_title = f"yoto-sklearn {release}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_static_path = []
