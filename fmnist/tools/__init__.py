"""Tools outside the DAG, reading what the pipeline made: predict (with images, pictures made into model input),
tune (an Optuna study run as DVC experiments), sweep (a grid shared across machines) and deps (dvc.yaml's deps
checked against the imports). No stage imports them.
"""
