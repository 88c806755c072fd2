"""Plumbing: how outputs are written and failures reported, never what the outputs hold (fmnist/tools/deps.py lists
each module with that reason): errors, runner, interrupts, processes, transaction, atomic, paths, quiet, and params
(reading params.yaml against the schemas in fmnist/schema/).
"""
