"""Stage pictures: the product-photo-like pictures the assess stage classifies, made from the first
params.yaml `assess.images` test images, each kind of change alone and all together, then taken through predict's
own preprocessing (fmnist/core/robustness.py, fmnist/core/images.py).

A stage of its own because making them is most of the assessment's work (about 8 ms a picture, 10 families) and
they depend on the test images and two params only: a change to a variant reruns assess, which reads them.
Writes data/pictures.npz.
"""
from fmnist.core import dataset, robustness
from fmnist.plumbing import params, paths, runner
from fmnist.plumbing.transaction import Transaction
from fmnist.schema.reporting import AssessParams


def main() -> None:
    assess = params.load(AssessParams)
    pictures = robustness.make_pictures(dataset.load_prepared("test"), assess.images, assess.seed)
    with Transaction("pictures") as outputs:
        outputs.write_bytes(paths.PICTURES, robustness.save_pictures(pictures))
    refused = sum(len(pictures.labels) - len(kept) for _, kept in pictures.families.values())
    print(f"{paths.PICTURES}: {len(pictures.families)} families of {len(pictures.labels)} pictures "
          f"({refused} refused by predict's preprocessing)")


if __name__ == "__main__":
    runner.run(main)
