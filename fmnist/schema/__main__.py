"""`python -m fmnist.schema`: validate every section of params.yaml. `make repro` runs it before DVC, which would
otherwise start stages (and replace their outputs) before the one with the bad value rejects it."""
from fmnist.plumbing import params
from fmnist.plumbing.runner import run
from fmnist.schema.sections import check
from fmnist.schema.training import describe_families


def main() -> None:
    parsed = check()
    print(f"{params.PARAMS_FILE}: all {len(parsed)} sections valid ({len(parsed['variants'].root)} variants)")
    shared = describe_families(parsed["variants"].root, parsed["train"])
    if shared:  # a new variant learns here which trajectory it joins (fmnist/core/trajectories.py)
        print("variants that share a trajectory, trained once:")
        print("\n".join(f"  {line}" for line in shared.splitlines()))


if __name__ == "__main__":
    run(main)
