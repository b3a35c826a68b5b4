//! `ImageDataset::new`: images the user already holds in memory.

use baal_data::{DataError, ImageDataset, ImageItem};
use burn::data::dataset::Dataset;

#[test]
fn items_come_back_in_chw_order_with_their_labels() {
    // Two 2×2×3 images: pixel value = 100·image + position.
    let pixels: Vec<u8> = (0..2u8)
        .flat_map(|i| (0..12u8).map(move |p| 100 * i + p))
        .collect();
    let data = ImageDataset::new(pixels, vec![3, 1], [2, 2, 3], 4).expect("valid");
    assert_eq!(data.len(), 2);
    assert_eq!(data.shape(), [2, 2, 3]);
    assert_eq!(data.num_classes(), 4);
    assert_eq!(data.labels(), &[3, 1]);
    let second: ImageItem = data.get(1).expect("item 1");
    assert_eq!(second.label, 1);
    assert_eq!(second.shape, [2, 2, 3]);
    assert_eq!(second.image, (100..112).collect::<Vec<u8>>());
    assert!(data.get(2).is_err());
}

#[test]
fn inconsistent_images_are_errors_that_say_what_is_wrong() {
    let message = |r: Result<ImageDataset, DataError>| match r {
        Err(e @ DataError::InvalidImages(_)) => e.to_string(),
        other => panic!("expected InvalidImages, got {other:?}"),
    };
    let m = message(ImageDataset::new(vec![0; 11], vec![0, 0], [1, 2, 3], 2));
    assert!(
        m.contains("11 pixels for 2 labels") && m.contains("expected 12"),
        "{m}"
    );
    let m = message(ImageDataset::new(vec![0; 12], vec![0, 5], [1, 2, 3], 2));
    assert!(m.contains("item 1") && m.contains("2 classes"), "{m}");
    let m = message(ImageDataset::new(vec![], vec![], [1, 0, 3], 2));
    assert!(m.contains("zero dimension"), "{m}");
    let m = message(ImageDataset::new(vec![0; 6], vec![0], [1, 2, 3], 0));
    assert!(m.contains("0 classes"), "{m}");
    let m = message(ImageDataset::new(vec![0; 6], vec![0], [1, 2, 3], 257));
    assert!(m.contains("257 classes"), "{m}");
    // A shape whose size overflows is an error, not a panic.
    let m = message(ImageDataset::new(vec![], vec![0, 0], [usize::MAX, 2, 1], 2));
    assert!(m.contains("more than fits"), "{m}");
}
