"""`python -m fmnist.schema`: validate every section of params.yaml. `make repro` runs it before DVC, which would
otherwise start stages (and replace their outputs) before the one with the bad value rejects it."""
from fmnist import params
from fmnist.schema.sections import check
from fmnist.stage import run


def main() -> None:
    parsed = check()
    print(f"{params.PARAMS_FILE}: all {len(parsed)} sections valid ({len(parsed['variants'].root)} variants)")


if __name__ == "__main__":
    run(main)
