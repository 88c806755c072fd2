"""Stage prepare: decode data/raw, scale to [0, 1], split train/validation, keep test apart.

Writes data/prepared/{train,val,test}.npz (float32 x of N x 28 x 28, uint8 y), no pickles.
"""
from fmnist.core import dataset
from fmnist.plumbing import params, paths, runner
from fmnist.plumbing.transaction import Transaction
from fmnist.schema.data import PrepareParams


def main() -> None:
    p = params.load(PrepareParams)
    train_images, train_labels = dataset.load_raw("train")
    test_images, test_labels = dataset.load_raw("test")
    train, val = dataset.split_train_val(dataset.scale(train_images), train_labels, p.test_size, p.random_state)
    test = dataset.Split(dataset.scale(test_images), test_labels)
    with Transaction("prepare") as outputs:
        dataset.save_prepared({"train": train, "val": val, "test": test}, outputs.folder(paths.PREPARED_DIR))
    print(f"{paths.PREPARED_DIR}: {len(train.y)} train, {len(val.y)} validation, {len(test.y)} test images")


if __name__ == "__main__":
    runner.run(main)
