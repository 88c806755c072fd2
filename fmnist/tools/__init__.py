"""Tools outside the DAG, reading what the pipeline made: predict (its preprocessing is core, fmnist/core/images.py:
the assess stage measures it), tune (an Optuna study run as DVC experiments), sweep (a grid shared across
machines) and deps (dvc.yaml's deps checked against the imports). No stage imports them.
"""
