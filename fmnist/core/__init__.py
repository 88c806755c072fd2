"""The pipeline's core: what a stage's results depend on, so what dvc.yaml declares as its deps.

Data: idx (the IDX file format), download, dataset. Models: baseline, backend, models, augmentation, training,
replicates (other_seeds: their child process), trajectories, evaluation. Judging results: spread (seed statistics),
comparison (the one "told apart or not" rule), choice, results, gate. Writing them up: selection (models/best and the
model card), figures, report (reports/summary.md), formatting; their text in templates/. Pictures:
images (predict's preprocessing), robustness (photo-like pictures made from test images), calibration.
"""
