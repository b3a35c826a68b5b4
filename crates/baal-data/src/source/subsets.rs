//! Fixed random subsets and class-balanced picks of a labelled dataset: the pool and test
//! subsets of a run, the seed labels a service starts from, a reproduction's initial labels.
//!
//! Every function draws from the generator it is given, so that a caller decides the stream
//! (a seed plan's, or one generator for several draws in order).

use rand::Rng;
use rand::seq::SliceRandom;

use crate::error::{DataError, Result};
use crate::index::DatasetIndex;

/// `count` positions of `0..len` drawn with `rng`, sorted; all of them (drawing nothing) when
/// `count` is at least `len`.
pub fn random_subset<R: Rng + ?Sized>(len: usize, count: usize, rng: &mut R) -> Vec<usize> {
    if count >= len {
        return (0..len).collect();
    }
    let mut positions = shuffled(len, rng);
    positions.truncate(count);
    positions.sort_unstable();
    positions
}

/// The positions `0..len` in an order drawn with `rng`.
pub fn shuffled<R: Rng + ?Sized>(len: usize, rng: &mut R) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(rng);
    order
}

/// The number of classes of `labels` (the largest label plus one).
pub fn class_count(labels: &[u8]) -> usize {
    labels
        .iter()
        .map(|&l| usize::from(l) + 1)
        .max()
        .unwrap_or(0)
}

/// How many of `positions` (into `labels`) each class has, for every class of `labels`.
pub fn class_counts(positions: &[usize], labels: &[u8]) -> Vec<usize> {
    let mut counts = vec![0; class_count(labels)];
    for &p in positions {
        counts[usize::from(labels[p])] += 1;
    }
    counts
}

/// `n` split over `classes`: `n / classes` each, the remainder to the first classes.
pub fn quotas(classes: usize, n: usize) -> Vec<usize> {
    (0..classes)
        .map(|c| n / classes.max(1) + usize::from(c < n % classes.max(1)))
        .collect()
}

/// `n` items to label, balanced over the classes of `labels` ([`quotas`]: the remainder to
/// the first classes), the first of each class in an order drawn with `rng`, in the order
/// they were picked. Fewer when a class has fewer items than its share.
pub fn label_balanced<R: Rng + ?Sized>(labels: &[u8], n: usize, rng: &mut R) -> Vec<DatasetIndex> {
    let mut quota = quotas(class_count(labels), n);
    let mut picked = Vec::with_capacity(n);
    if n == 0 {
        return picked;
    }
    for i in shuffled(labels.len(), rng) {
        let class = usize::from(labels[i]);
        if quota[class] > 0 {
            quota[class] -= 1;
            picked.push(DatasetIndex::new(i));
            if picked.len() == n {
                break;
            }
        }
    }
    picked
}

/// `quota[c]` items of each class `c`: the first ones of `order` (positions of `labels`), in
/// that order; and the positions of `order` left over, in order.
///
/// # Errors
/// A class has fewer items than its quota ([`DataError::ClassShortfall`]).
pub fn pick_per_class(
    labels: &[u8],
    quota: &[usize],
    order: Vec<usize>,
) -> Result<(Vec<DatasetIndex>, Vec<usize>)> {
    let mut left = quota.to_vec();
    let mut picked = Vec::with_capacity(quota.iter().sum());
    let mut rest = Vec::with_capacity(order.len());
    for i in order {
        let class = usize::from(labels[i]);
        if left.get(class).is_some_and(|&n| n > 0) {
            left[class] -= 1;
            picked.push(DatasetIndex::new(i));
        } else {
            rest.push(i);
        }
    }
    if let Some(class) = left.iter().position(|&n| n > 0) {
        return Err(DataError::ClassShortfall {
            class,
            have: quota[class] - left[class],
            wanted: quota[class],
        });
    }
    Ok((picked, rest))
}

/// `count` positions of `labels` with every class the same number of times ([`quotas`]),
/// drawn with `rng`, sorted; every position when `count` is 0.
///
/// # Errors
/// A class has fewer items than its share.
pub fn stratified_subset<R: Rng + ?Sized>(
    labels: &[u8],
    count: usize,
    rng: &mut R,
) -> Result<Vec<usize>> {
    if count == 0 {
        return Ok((0..labels.len()).collect());
    }
    let quota = quotas(class_count(labels), count);
    let (picked, _) = pick_per_class(labels, &quota, shuffled(labels.len(), rng))?;
    let mut positions: Vec<usize> = picked.iter().map(|i| i.get()).collect();
    positions.sort_unstable();
    Ok(positions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    #[test]
    fn balanced_labels_cover_every_class_with_the_remainder_first() {
        let labels: Vec<u8> = (0..200).map(|i| (i % 10) as u8).collect();
        let picked = label_balanced(&labels, 25, &mut rng(3));
        let positions: Vec<usize> = picked.iter().map(|i| i.get()).collect();
        assert_eq!(
            class_counts(&positions, &labels),
            [3, 3, 3, 3, 3, 2, 2, 2, 2, 2]
        );
        assert_eq!(label_balanced(&labels, 25, &mut rng(3)), picked);
        assert_ne!(label_balanced(&labels, 25, &mut rng(4)), picked);
        // A class short of its share gives fewer, not another class's items.
        let skewed: Vec<u8> = (0..100).map(|i| u8::from(i == 0)).collect();
        assert_eq!(label_balanced(&skewed, 4, &mut rng(0)).len(), 3);
    }

    #[test]
    fn stratified_subsets_count_every_class_the_same() {
        // Class 0 four times as frequent as the others.
        let labels: Vec<u8> = (0..700)
            .map(|i| if i < 400 { 0 } else { (1 + i % 3) as u8 })
            .collect();
        let subset = stratified_subset(&labels, 40, &mut rng(9)).expect("enough");
        assert_eq!(class_counts(&subset, &labels), [10, 10, 10, 10]);
        assert!(subset.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            stratified_subset(&labels, 0, &mut rng(9))
                .expect("all")
                .len(),
            700
        );
        let err = stratified_subset(&labels, 600, &mut rng(9)).expect_err("100 per class");
        assert!(
            err.to_string().contains("has 100 items, 150 wanted"),
            "{err}"
        );
    }

    #[test]
    fn random_subsets_are_sorted_stable_and_whole_when_too_large() {
        let subset = random_subset(100, 10, &mut rng(5));
        assert_eq!(subset.len(), 10);
        assert!(subset.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(random_subset(100, 10, &mut rng(5)), subset);
        assert_eq!(random_subset(5, 9, &mut rng(5)), vec![0, 1, 2, 3, 4]);
        assert_eq!(random_subset(5, 5, &mut rng(5)), vec![0, 1, 2, 3, 4]);
    }
}
