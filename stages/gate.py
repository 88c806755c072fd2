"""Metric gate (run by CI and by hand, not a pipeline stage): exit 1 unless every mean in params.yaml
`gates.minimum` is present, at least its minimum, and no further below its value at the reference git
ref than the seed spread allows (max(gates.floor, gates.k x the standard error of the difference of the
two means)). Prints one table of every check.

Usage:
  python -m stages.gate                      minimums + drop against gates.reference (main)
  python -m stages.gate --ref HEAD~1         ... against another git ref
  python -m stages.gate --no-ref             minimums only
  python -m stages.gate --reproduces HEAD    this run's mean accuracies vs those committed at HEAD, within
                                             the same spread tolerance (CI, after a fresh `dvc repro`)
"""
import argparse

from fmnist import gate, params, stage


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.gate", description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--ref", help="git ref to measure the drop against (default: gates.reference)")
    which.add_argument("--no-ref", action="store_true", help="check the minimums only")
    which.add_argument("--reproduces", metavar="REF", help="check that this run reproduces REF's accuracies")
    args = parser.parse_args()
    gates = params.load("gates")
    tolerances = gate.Tolerances(gates.k, gates.floor, gates.fixed_tolerance)
    current = gate.current_metrics()
    rule = f"tolerance = max({gates.floor}, {gates.k:g} x SE of the difference of the two means)"

    if args.reproduces:
        checks, notes, warnings = gate.check_reproduced(current, gate.metrics_at(args.reproduces),
                                                        args.reproduces, tolerances)
        title = f"reproduction of {args.reproduces}"
        headers = {"reproduce": f"at {args.reproduces} (difference, tolerance)"}
    else:
        checks = gate.check_minimums(gates.minimum, current)
        ref = None if args.no_ref else args.ref or gates.reference
        notes, warnings = [], []
        if ref:
            drops, warnings = gate.check_drops(list(gates.minimum), current, gate.metrics_at(ref), ref, tolerances)
            checks += drops
        title = "gate" + (f" (minimums; drop vs {ref})" if ref else " (minimums)")
        headers = {"minimum": "minimum", "drop": f"at {ref} (change, allowed drop)"}

    print(gate.table(checks, headers))
    if any(check.kind in ("drop", "reproduce") for check in checks):
        print(rule)
    for line in notes:
        print(f"note: {line}")
    for line in warnings:
        print(f"warning: {line}")
    failed = gate.failures(checks)
    if failed:
        raise stage.StageError(f"{title} failed, {len(failed)} of {len(checks)} checks:\n  " + "\n  ".join(failed))
    print(f"{title}: all {len(checks)} checks pass")


if __name__ == "__main__":
    stage.run(main)
