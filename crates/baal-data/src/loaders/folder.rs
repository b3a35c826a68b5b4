//! A folder of image files (baal's `FileDataset`): PNG and JPEG files at its top level are the
//! unlabelled pool; a sub-folder named after a class holds images labelled with that class.

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::loaders::ImageDataset;

/// The images of a folder, resized to one shape, with where they came from.
#[derive(Clone, Debug)]
pub struct ImageFolder {
    /// Every image (CHW, 0 to 255): the top-level files first, in name order, then each class
    /// sub-folder's, in name order. Labels are placeholders (0); see `labelled`.
    pub images: ImageDataset,
    /// The file of each image, in the same order.
    pub files: Vec<PathBuf>,
    /// Class names, in class order.
    pub classes: Vec<String>,
    /// The images of the class sub-folders: (dataset index, class).
    pub labelled: Vec<(usize, usize)>,
    /// How many images are top-level files (the unlabelled pool): indices `0 .. pool`.
    pub pool: usize,
}

impl ImageFolder {
    /// Loads a folder of images: PNG and JPEG files at its top level are the pool; a sub-folder
    /// named after a class holds images labelled with it. `classes` gives the class names; when
    /// empty, the sub-folders' names are the classes (sorted).
    ///
    /// # Errors
    /// The folder cannot be read, holds no image, a file is not a readable image, a sub-folder
    /// is not one of `classes`, there are fewer than 2 classes, or the shape is not 1 or 3
    /// channels of at least 1 pixel.
    pub fn load(dir: &Path, classes: &[String], shape: FolderShape) -> Result<Self> {
        if !matches!(shape.channels, 1 | 3) || shape.size == 0 {
            return Err(DataError::corrupt(
                dir,
                format!(
                    "image shape {}×{}×{}: 1 or 3 channels and a size of at least 1",
                    shape.channels, shape.size, shape.size
                ),
            ));
        }
        let entries = sorted_entries(dir)?;
        let sub_dirs: Vec<&PathBuf> = entries.iter().filter(|p| p.is_dir()).collect();
        let classes: Vec<String> = if classes.is_empty() {
            sub_dirs
                .iter()
                .filter_map(|d| d.file_name().and_then(|n| n.to_str()).map(String::from))
                .collect()
        } else {
            classes.to_vec()
        };
        if classes.len() < 2 {
            return Err(DataError::corrupt(
                dir,
                format!(
                    "{} class(es) for {}: give at least 2 with --classes, or sub-folders named after them",
                    classes.len(),
                    dir.display()
                ),
            ));
        }
        let mut files: Vec<PathBuf> = entries.iter().filter(|p| is_image(p)).cloned().collect();
        let pool_len = files.len();
        let mut seed_labels = Vec::new();
        for sub in sub_dirs {
            let name = sub.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let class = classes.iter().position(|c| c == name).ok_or_else(|| {
                DataError::corrupt(
                    dir,
                    format!(
                        "{}: the sub-folder {name:?} is not a class ({})",
                        sub.display(),
                        classes.join(", ")
                    ),
                )
            })?;
            for file in sorted_entries(sub)?.into_iter().filter(|p| is_image(p)) {
                seed_labels.push((files.len(), class));
                files.push(file);
            }
        }
        if files.is_empty() {
            return Err(DataError::corrupt(
                dir,
                format!("{} holds no PNG or JPEG image", dir.display()),
            ));
        }
        let mut pixels = Vec::with_capacity(files.len() * shape.channels * shape.size * shape.size);
        for file in &files {
            pixels.extend(read_image(file, shape)?);
        }
        let images = ImageDataset::new(
            pixels,
            vec![0; files.len()],
            [shape.channels, shape.size, shape.size],
            classes.len(),
        )?;
        Ok(Self {
            images,
            files,
            classes,
            labelled: seed_labels,
            pool: pool_len,
        })
    }
}

/// How the images of a folder are turned into model inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FolderShape {
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Side of the square the images are resized to.
    pub size: usize,
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DataError::io(dir, e))?;
    entries.sort();
    Ok(entries)
}

/// One image file resized to `shape`, CHW.
fn read_image(path: &Path, shape: FolderShape) -> Result<Vec<u8>> {
    let image = ::image::ImageReader::open(path)
        .map_err(|e| DataError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?
        .decode()
        .map_err(|e| DataError::corrupt(path, format!("not a readable image: {e}")))?;
    let size = u32::try_from(shape.size).unwrap_or(u32::MAX);
    let image = image.resize_exact(size, size, ::image::imageops::FilterType::Triangle);
    Ok(match shape.channels {
        1 => image.to_luma8().into_raw(),
        _ => {
            let hwc = image.to_rgb8().into_raw();
            let plane = shape.size * shape.size;
            (0..3)
                .flat_map(|c| (0..plane).map(move |p| (c, p)))
                .map(|(c, p)| hwc[p * 3 + c])
                .collect()
        }
    })
}
