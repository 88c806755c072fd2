"""The schema of params.yaml, one pydantic model per section, grouped by who reads them: data (download,
prepare), baseline, training (train, variants), reporting (chapter, plot, select) and tools (tune, gates).

A stage imports only the schemas of the sections it reads, so dvc.yaml's deps name exactly those: their
defaults change results. `python -m fmnist.schema` validates the whole file (fmnist/schema/__main__.py).
"""
