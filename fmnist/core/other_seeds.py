"""The train stage's child process, `python -m fmnist.core.other_seeds <variant> [--alone]`: it trains the
variant's other seeds (fmnist.core.replicates) while the stage trains seed 42, and prints their result as JSON.

The backend comes from the stage (KERAS_BACKEND, inherited) and is chosen here, before anything imports keras, as a
stage's main() chooses it; stages/train.py imports this module only for its name.
"""
from fmnist.core import backend
from fmnist.plumbing import runner


def main() -> None:
    backend.use(backend.requested())
    from fmnist.core import replicates  # keras: only once the backend is chosen

    replicates.main()


if __name__ == "__main__":
    runner.run(main)
