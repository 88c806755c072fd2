"""Tools outside the DAG, reading what the pipeline made: predict (its preprocessing is core, fmnist/core/images.py:
the assess stage measures it), tune (an Optuna study run as DVC experiments), sweep (a grid shared across
machines), deps (dvc.yaml's deps checked against the imports), site (the reports as an offline HTML site) and
pull (dvc pull from a read-only remote, with one line per failure). No stage imports them.
"""
