"""Every use of a library's private or internal API, each behind one small function: pipeline.py for what
the stages run (a dep of each), experiments.py for what the tools outside the DAG run (tune, sweep)."""
