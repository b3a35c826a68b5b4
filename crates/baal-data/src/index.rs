//! The two kinds of index of active learning, as distinct types.
//!
//! A [`DatasetIndex`] is the position of an item in the wrapped dataset: it never changes and is
//! what an oracle (a person, a label file) knows. A [`PoolIndex`] is the position of an item in
//! the current pool (the unlabelled items, in dataset order): it changes each time something is
//! labelled. Mixing them up labels the wrong items, so they are separate types and converting one
//! into the other needs the dataset
//! ([`ActiveLearningDataset::pool_to_dataset_index`](crate::ActiveLearningDataset::pool_to_dataset_index)).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Position of an item in the wrapped dataset (what the oracle knows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatasetIndex(usize);

/// Position of an item in the current pool of unlabelled items (valid until the next labelling).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PoolIndex(usize);

macro_rules! index_impl {
    ($name:ident, $what:literal) => {
        impl $name {
            #[doc = concat!("The ", $what, " index `index`.")]
            pub const fn new(index: usize) -> Self {
                Self(index)
            }

            /// The raw position.
            pub const fn get(self) -> usize {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

index_impl!(DatasetIndex, "dataset");
index_impl!(PoolIndex, "pool");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_plain_numbers() {
        let json = serde_json::to_string(&[DatasetIndex::new(3), DatasetIndex::new(7)])
            .expect("serialises");
        assert_eq!(json, "[3,7]");
        let back: Vec<PoolIndex> = serde_json::from_str("[1,2]").expect("parses");
        assert_eq!(back, vec![PoolIndex::new(1), PoolIndex::new(2)]);
        assert_eq!(PoolIndex::new(5).get(), 5);
        assert_eq!(DatasetIndex::new(9).to_string(), "9");
    }
}
