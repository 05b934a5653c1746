"""Maps of the latent space and what is drawn or exported from them.

- `map_arrays`: code arrays checked, stratified samples, PCA without scikit-learn, k-nearest neighbours.
- `projection`: a 2-D map of the codes (PCA, t-SNE, UMAP) with its quality (trustworthiness, kNN recall).
- `tsne_umap`: the t-SNE (openTSNE) and UMAP fits, imported only when asked for.
- `map_plane`: the decoded grid over a map's plane, and the density behind it.
- `latent_tools`: nearest neighbours in code space, a selection's summary, attribute vectors.
- `export`: codes as CSV and the TensorBoard projector zip.

Imports nothing here: a page that builds a PCA map loads numpy and scipy only. Below `runs`: nothing
here imports it (runs/epoch_codes uses map_arrays' PCA for the replay).
"""
