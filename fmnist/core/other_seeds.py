"""The train stage's child process, `python -m fmnist.core.other_seeds <variant> [--alone]`: it trains the
variant's other seeds (fmnist.core.replicates) while the stage trains seed 42, and prints their result as JSON.

The backend comes from the stage (KERAS_BACKEND, inherited) and is chosen here, before anything imports keras, as
the stage's beside() chooses it; neither imports keras at this module's import.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from fmnist.core import backend
from fmnist.plumbing import processes, quiet, runner
from fmnist.schema.training import TrainParams, Variant, replicates_of


@contextlib.contextmanager
def beside(name: str, members: dict[str, Variant], shared: TrainParams) -> Iterator[processes.Child | None]:
    """The train stage's processes, for training `name` (of the family `members`): TensorFlow's start-up chatter
    filtered, the backend chosen, and the variant's other seeds training in this module's child process meanwhile
    (on a second core; None when the variant has one seed), stopped on any way out of the block. The child starts
    first, before this process imports keras: it is the longer of the two."""
    quiet.filter_stderr()  # TensorFlow's start-up notices and other chatter that reports no problem
    backend.choose(shared.backend)  # for the child too, which inherits it
    job = (processes.Child(f"training the other seeds of {name}", __name__, name,
                           *([] if len(members) > 1 else ["--alone"]))
           if replicates_of(members[name], shared) > 1 else None)
    try:
        backend.use(shared.backend)
        if job is not None and shared.backend == "tensorflow":
            one_thread_for_seed_42()
        yield job
    finally:
        if job:
            job.stop()  # on any failure the child must not outlive the stage


def one_thread_for_seed_42() -> None:
    """This process's TensorFlow ops on one intra-op thread, while the stack trains beside it on every core. Keras's
    fit at batch 64 keeps about one core busy, and a pool of a thread a core only competes with the stack: `tuned`'s
    stage 111 -> 102 s on the 2-core Xeon, its numbers the same to the bit (docs/speed.md). Before the first op."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)


def main() -> None:
    backend.use(backend.requested())
    from fmnist.core import replicates  # keras: only once the backend is chosen

    replicates.main()


if __name__ == "__main__":
    runner.run(main)
