//! The real Fashion-MNIST files (Debian's `dataset-fashion-mnist`, installed by CI).

use baal_data::{ActiveLearningDataset, FashionMnist, ImageItem, PoolIndex};
use burn::data::dataset::Dataset;

#[test]
fn real_fashion_mnist_loads_with_known_sizes_and_labels() {
    if baal_test_support::require_dir(
        FashionMnist::DEFAULT_DIR,
        baal_test_support::FASHION_MNIST_INSTALL,
    )
    .is_none()
    {
        return;
    }
    let data = FashionMnist::from_default_dir().expect("loads");
    assert_eq!(data.train.len(), 60_000);
    assert_eq!(data.test.len(), 10_000);
    assert_eq!(
        &data.train.labels()[..12],
        &[9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9]
    );
    assert_eq!(
        &data.test.labels()[..12],
        &[9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5]
    );
    let first = data.train.get(0).expect("item");
    assert_eq!(first.shape, [1, 28, 28]);
    assert_eq!(first.image.len(), 784);
    assert!(first.image.iter().any(|&p| p > 0));
    // Every class appears 6000 times in the training split.
    let mut counts = [0usize; 10];
    data.train
        .labels()
        .iter()
        .for_each(|&l| counts[usize::from(l)] += 1);
    assert_eq!(counts, [6000; 10]);

    // The loader plugs into the active-learning dataset.
    let mut active = ActiveLearningDataset::new(data.train)
        .with_known_labels(|item: &ImageItem| item.label)
        .with_seed(1);
    active.label_randomly(20).expect("labels");
    active.label(&[PoolIndex::new(0)]).expect("labels");
    assert_eq!(active.n_labelled(), 21);
    assert_eq!(active.pool_subset(100).expect("subset").len(), 100);
    let labelled = active.labelled();
    for position in 0..labelled.len() {
        let item = labelled.get(position).expect("item");
        assert_eq!(item.label, item.item.label);
    }
}
