"""Metric gate (run by CI and by hand, not a pipeline stage): exit 1 unless every metric in params.yaml
`gates.minimum` is present, at least its minimum, and at most `gates.max_drop` below its value at the
reference git ref. Prints one table of every check.

Usage:
  python -m stages.gate                      minimums + drop against gates.reference (main)
  python -m stages.gate --ref HEAD~1         ... against another git ref
  python -m stages.gate --no-ref             minimums only
  python -m stages.gate --reproduces HEAD    this run's accuracies vs those committed at HEAD, within
                                             gates.reproduce_tolerance (CI, after a fresh `dvc repro`)
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
    current = gate.current_metrics()

    if args.reproduces:
        checks, others = gate.check_reproduced(current, gate.metrics_at(args.reproduces), args.reproduces,
                                               gates.reproduce_tolerance)
        title = f"reproduction of {args.reproduces}"
        headers = {"reproduce": f"at {args.reproduces} (within ±{gates.reproduce_tolerance})"}
    else:
        checks = gate.check_minimums(gates.minimum, current)
        ref = None if args.no_ref else args.ref or gates.reference
        if ref:
            checks += gate.check_drops(list(gates.minimum), current, gate.metrics_at(ref), ref, gates.max_drop)
        others = []
        title = "gate" + (f" (minimums; drop vs {ref})" if ref else " (minimums)")
        headers = {"minimum": "minimum", "drop": f"at {ref} (max drop {gates.max_drop})"}

    print(gate.table(checks, headers))
    for line in others:
        print(f"note: {line}")
    failed = gate.failures(checks)
    if failed:
        raise stage.StageError(f"{title} failed, {len(failed)} of {len(checks)} checks:\n  " + "\n  ".join(failed))
    print(f"{title}: all {len(checks)} checks pass")


if __name__ == "__main__":
    stage.run(main)
