//! What the service labels: the items' pixels (for the model), their pictures (for people),
//! the seed labels that come with the data, and a test split when the data has one.
//!
//! Sources: the datasets the project loads (Fashion-MNIST, MNIST, CIFAR-10), a `.npy` array of
//! images, and a folder of image files (baal's `FileDataset`): files at its top level are the
//! pool, files in a sub-folder named after a class are labelled with that class (the seed set).

use std::io::Cursor;
use std::path::{Path, PathBuf};

use baal_data::{DatasetIndex, FolderShape, ImageDataset, ImageFolder, ImageItem};
use burn::data::dataset::Dataset;
use image::{DynamicImage, ImageFormat};

use crate::error::ServeError;

/// The items of a labelling service.
#[derive(Clone, Debug)]
pub struct Items {
    /// Every item's pixels (CHW, 0 to 255). Their labels are placeholders unless `known`.
    pub images: ImageDataset,
    /// The original files of an image folder, served as they are.
    pub files: Option<Vec<PathBuf>>,
    /// Class names, in class order.
    pub classes: Vec<String>,
    /// Labels the data comes with (an image folder's sub-folders).
    pub seed_labels: Vec<(DatasetIndex, usize)>,
    /// A labelled test split to measure accuracy on, when the data has one.
    pub test: Option<ImageDataset>,
}

impl Items {
    /// Number of items.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether there is no item.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// The picture of `item` and its content type: the original file of an image folder, a PNG
    /// of the pixels otherwise.
    ///
    /// # Errors
    /// No such item, or its file cannot be read.
    pub fn picture(&self, item: usize) -> Result<(Vec<u8>, &'static str), ServeError> {
        if item >= self.len() {
            return Err(ServeError::UnknownItem {
                item,
                len: self.len(),
            });
        }
        if let Some(files) = &self.files {
            let path = &files[item];
            let bytes = std::fs::read(path).map_err(|e| ServeError::io(path, e))?;
            let kind = match ImageFormat::from_path(path) {
                Ok(ImageFormat::Jpeg) => "image/jpeg",
                _ => "image/png",
            };
            return Ok((bytes, kind));
        }
        let image = self
            .images
            .get(item)
            .map_err(|e| ServeError::Model(e.to_string()))?;
        Ok((png(&image)?, "image/png"))
    }
}

/// A PNG of a CHW image of 1 or 3 channels.
///
/// # Errors
/// Another number of channels.
pub fn png(item: &ImageItem) -> Result<Vec<u8>, ServeError> {
    let [channels, height, width] = item.shape;
    let (w, h) = (
        u32::try_from(width).map_err(|_| ServeError::Config("image too wide".into()))?,
        u32::try_from(height).map_err(|_| ServeError::Config("image too tall".into()))?,
    );
    let plane = height * width;
    let image = match channels {
        1 => image::GrayImage::from_raw(w, h, item.image.clone()).map(DynamicImage::ImageLuma8),
        3 => {
            let mut hwc = Vec::with_capacity(3 * plane);
            for p in 0..plane {
                hwc.extend((0..3).map(|c| item.image[c * plane + p]));
            }
            image::RgbImage::from_raw(w, h, hwc).map(DynamicImage::ImageRgb8)
        }
        _ => None,
    }
    .ok_or_else(|| {
        ServeError::Config(format!(
            "images of {channels} channel(s) cannot be shown: 1 or 3"
        ))
    })?;
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .map_err(|e| ServeError::Config(format!("PNG encoding: {e}")))?;
    Ok(bytes)
}

/// Loads a folder of images as a pool to label (see [`ImageFolder::load`]): its top-level
/// files are the pool, the files of its class sub-folders the seed labels.
///
/// # Errors
/// As [`ImageFolder::load`].
pub fn load_folder(
    dir: &Path,
    classes: &[String],
    shape: FolderShape,
) -> Result<Items, ServeError> {
    let folder = ImageFolder::load(dir, classes, shape)?;
    Ok(Items {
        images: folder.images,
        files: Some(folder.files),
        classes: folder.classes,
        seed_labels: folder
            .labelled
            .into_iter()
            .map(|(index, class)| (DatasetIndex::new(index), class))
            .collect(),
        test: None,
    })
}

/// Loads a `.npy` array of images (see [`ImageDataset::from_npy_images`]) as a pool to label
/// into `classes`.
///
/// # Errors
/// As [`ImageDataset::from_npy_images`].
pub fn load_npy(path: &Path, classes: Vec<String>) -> Result<Items, ServeError> {
    let images = ImageDataset::from_npy_images(path, classes.len().max(1))?;
    Ok(Items {
        images,
        files: None,
        classes,
        seed_labels: Vec::new(),
        test: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path, value: u8, size: u32) {
        image::GrayImage::from_pixel(size, size, image::Luma([value]))
            .save(path)
            .expect("writes a PNG");
    }

    #[test]
    fn a_folder_gives_pool_files_and_seed_labels_from_sub_folders() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_png(&dir.path().join("b.png"), 10, 8);
        write_png(&dir.path().join("a.png"), 20, 16);
        std::fs::create_dir(dir.path().join("cat")).expect("mkdir");
        write_png(&dir.path().join("cat").join("x.png"), 200, 4);
        std::fs::write(dir.path().join("notes.txt"), "not an image").expect("writes");
        let classes = vec!["cat".to_string(), "dog".to_string()];
        let items = load_folder(
            dir.path(),
            &classes,
            FolderShape {
                channels: 1,
                size: 4,
            },
        )
        .expect("loads");
        assert_eq!(items.len(), 3);
        let files = items.files.as_ref().expect("files");
        assert!(files[0].ends_with("a.png") && files[1].ends_with("b.png"));
        assert_eq!(items.seed_labels, vec![(DatasetIndex::new(2), 0)]);
        let first = items.images.get(0).expect("item");
        assert_eq!(first.shape, [1, 4, 4]);
        assert!(first.image.iter().all(|&p| p == 20), "resized, same grey");
        let (bytes, kind) = items.picture(1).expect("picture");
        assert_eq!(kind, "image/png");
        assert_eq!(
            bytes,
            std::fs::read(&files[1]).expect("reads"),
            "the original file"
        );
        assert!(matches!(
            items.picture(3),
            Err(ServeError::UnknownItem { item: 3, len: 3 })
        ));
    }

    #[test]
    fn bad_folders_are_errors_that_say_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shape = FolderShape {
            channels: 3,
            size: 8,
        };
        let two = vec!["a".to_string(), "b".to_string()];
        let err = load_folder(dir.path(), &two, shape).expect_err("empty");
        assert!(err.to_string().contains("holds no PNG or JPEG"), "{err}");
        std::fs::write(dir.path().join("broken.png"), b"not a png").expect("writes");
        let err = load_folder(dir.path(), &two, shape).expect_err("broken");
        assert!(err.to_string().contains("broken.png"), "{err}");
        std::fs::remove_file(dir.path().join("broken.png")).expect("rm");
        write_png(&dir.path().join("ok.png"), 1, 8);
        std::fs::create_dir(dir.path().join("horse")).expect("mkdir");
        let err = load_folder(dir.path(), &two, shape).expect_err("unknown class");
        assert!(
            err.to_string().contains("\"horse\" is not a class"),
            "{err}"
        );
        let err = load_folder(dir.path(), &[], shape).expect_err("one class");
        assert!(err.to_string().contains("1 class(es)"), "{err}");
    }

    #[test]
    fn pngs_round_trip_grey_and_rgb() {
        for (channels, image) in [(1, vec![0u8, 50, 100, 150]), (3, (0..12).collect())] {
            let item = ImageItem {
                image: image.clone(),
                shape: [channels, 2, 2],
                label: 0,
            };
            let bytes = png(&item).expect("encodes");
            let decoded = image::load_from_memory(&bytes).expect("decodes");
            let back: Vec<u8> = if channels == 1 {
                decoded.to_luma8().into_raw()
            } else {
                let hwc = decoded.to_rgb8().into_raw();
                (0..3)
                    .flat_map(|c| (0..4).map(move |p| (c, p)))
                    .map(|(c, p)| hwc[p * 3 + c])
                    .collect()
            };
            assert_eq!(back, image);
        }
    }
}
