"""The Fashion-MNIST pipeline's library: what the stages (stages/) run, each piece written once.

The pipeline's core (what results depend on, declared as stage deps in dvc.yaml): idx, dataset, baseline, models,
training, replicates, evaluation, spread, choice, results, selection, figures, report, schema/ (params.yaml's
sections). Tools outside the DAG: gate, tune, sweep, predict, images, deps. Plumbing, result-neutral (listed with
the reasons in fmnist/deps.py): stage, transaction, atomic, paths, quiet, params.
"""
