"""Metric gate (run by CI and by hand, not a pipeline stage): exit 1 unless the baseline and every variant have
a minimum in params.yaml `gates.minimum`, every such mean is present, at least its minimum, and no further below
its value at the reference git ref than the seed spread allows (max(gates.floor, max(gates.k, Holm's t) x the
standard error of the difference of the two means; Holm's method holds the chance of any false alarm across
the checks to gates.false_alarm). Prints one table of every check.

Usage:
  python -m stages.gate                      minimums + drop against gates.reference (main)
  python -m stages.gate --ref HEAD~1         ... against another git ref
  python -m stages.gate --no-ref             minimums only
  python -m stages.gate --reproduces HEAD --ran LOG
                                             this run's mean accuracies vs those committed at HEAD, within the
                                             same spread tolerance; every stage compared must be in LOG, the
                                             stages the run executed (`make reproduce` does both)
  python -m stages.gate --power              the seeds each gated mean needs to detect gates.detect (`make power`)

Every drop line says what it could see: the drop it detects 80% of the time, and one of four verdicts
(regression, worse within noise, no measurable change, better; only a regression fails). Under the table: the
verdicts counted, the checks that cannot see gates.detect, and the family-wise chance of a false alarm.
"""
import argparse
from pathlib import Path

from fmnist.plumbing import errors, params, runner
from fmnist.plumbing.paths import BASELINE
from fmnist.schema.gates import GatesParams
from fmnist.schema.training import TrainParams, VariantsParams, families


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.gate", description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--ref", help="git ref to measure the drop against (default: gates.reference)")
    which.add_argument("--no-ref", action="store_true", help="check the minimums only")
    which.add_argument("--reproduces", metavar="REF", help="check that this run reproduces REF's accuracies")
    which.add_argument("--power", action="store_true",
                       help="print the seeds (train.replicates) each gated mean needs to detect gates.detect")
    parser.add_argument("--ran", metavar="FILE", type=Path,
                        help="with --reproduces: the stages this run executed, one per line ($FMNIST_RUN_LOG of the "
                             "run; `make reproduce` passes it)")
    args = parser.parse_args()
    from fmnist.core import gate  # after the options: it loads SciPy and pandas (~1.5 s), which --help need not

    if args.reproduces and args.ran is None:
        parser.error("--reproduces needs --ran FILE, the stages the run executed: without it a stage DVC skipped "
                     "(its outputs in git) would be compared with itself; `make reproduce` runs and checks both")
    gates = params.load(GatesParams)
    tolerances = gate.Tolerances(gates.k, gates.floor, gates.fixed_tolerance, gates.false_alarm)
    current = gate.current_metrics()
    rule = (f"tolerance = max({gates.floor}, max({gates.k:g}, t) x SE of the difference of the two means), t the Welch "
            f"t quantile of the check's Holm level (gates.false_alarm {gates.false_alarm:g} / checks left)")

    if args.power:
        needs = gate.power(list(gates.minimum), current, tolerances, gates.detect, gates.max_replicates)
        print(gate.power_table(needs, gates.detect, gates.max_replicates))
        variants = params.load(VariantsParams).root
        together = families(variants, params.load(TrainParams))
        for line in gate.power_advice(needs, gates.detect, gates.max_replicates, together):
            print(line)
        return

    if args.reproduces:
        ran = gate.read_run_log(args.ran)
        checks, notes, warnings = gate.check_reproduced(current, gate.metrics_at(args.reproduces),
                                                        args.reproduces, tolerances)
        checks = gate.check_ran(checks, ran, args.ran) + checks
        notes.insert(0, f"stages run: {len(ran)} ({', '.join(ran)})")
        title = f"reproduction of {args.reproduces}"
        headers = {"reproduce": f"at {args.reproduces} (difference, tolerance)"}
    else:
        variants = params.load(VariantsParams).root
        checks = gate.check_coverage([BASELINE, *variants], gates.minimum, current, gates.k, gates.minimum_margin)
        checks += gate.check_minimums(gates.minimum, current)
        ref = None if args.no_ref else args.ref or gates.reference
        notes, warnings = [], []
        if ref:
            drops, warnings = gate.check_drops(list(gates.minimum), current, gate.metrics_at(ref), ref, tolerances)
            checks += drops
            notes = gate.paired_lines(ref)
        title = "gate" + (f" (minimums; drop vs {ref})" if ref else " (minimums)")
        headers = {"minimum": "minimum", "drop": f"at {ref} (change, allowed drop)"}

    print(gate.table(checks, headers))
    if any(check.kind in ("drop", "reproduce") for check in checks):
        print(rule)
        for line in gate.sight_lines(checks, gates.detect, gates.false_alarm, gates.max_replicates):
            print(line)
    for line in notes:
        print(f"note: {line}")
    for line in warnings:
        print(f"warning: {line}")
    failed = gate.failures(checks)
    if failed:
        raise errors.StageError(f"{title} failed, {len(failed)} of {len(checks)} checks:\n  " + "\n  ".join(failed))
    print(f"{title}: all {len(checks)} checks pass")


if __name__ == "__main__":
    runner.run(main)
