"""
A panel from an AnnData, scverse style
======================================

:func:`yoto_sklearn.anndata.select_genes` takes targets by ``adata.obs`` column name
and writes the panel back into ``adata.var`` and ``adata.uns``, as scanpy tools do.
"""

# %%
from yoto_sklearn import plotting
from yoto_sklearn.anndata import select_genes
from yoto_sklearn.datasets import load_pbmc68k_reduced

adata = load_pbmc68k_reduced()
sel = select_genes(
    adata, ["bulk_labels", "phase", "S_score"], k=20, use_raw=True, random_state=0
)

# %%
# The panel is in ``adata.var`` (genes of ``adata.raw`` too) and ``adata.uns``.
panel = adata.var.loc[adata.var["yoto_selected"], ["yoto_score", "yoto_rank"]]
print(panel.sort_values("yoto_rank"))
print(adata.uns["yoto"]["metrics"])

# %%
# Expression of the panel genes by cell population (the model reads ``adata.raw``,
# as it was fitted with ``use_raw=True``).
fig = plotting.plot_panel_expression(
    sel, adata, adata.obs["bulk_labels"], title="bulk_labels"
)
