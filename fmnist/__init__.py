"""The Fashion-MNIST pipeline's library: what the stages (stages/) run, each piece written once. The folders are
the architecture (docs/contributing.md draws it):

- core/: the pipeline's core, what results depend on, so what dvc.yaml declares as stage deps;
- schema/: params.yaml's sections (deps too: their defaults change results);
- compat/: every use of a library's private API (pipeline.py for the stages, experiments.py for the tools);
- plumbing/: result-neutral (fmnist/tools/deps.py gives each module's reason): errors, the stage runner,
  interrupts, processes, transactions, atomic writes, paths, quiet stderr, reading params.yaml;
- tools/: outside the DAG, reading what it made: predict, tune, sweep, deps.
"""
