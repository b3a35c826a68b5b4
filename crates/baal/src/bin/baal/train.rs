//! `baal train`: fits a zoo model on labelled images and writes a model folder (its weights
//! and a card, see [`baal_zoo::folder`]) that `baal predict --model-dir` scores a pool with.

use std::path::{Path, PathBuf};

use baal::active::{OptimizerConfig, Trainer, TrainerConfig};
use baal::bayesian::on_flex_workers;
use baal::data::{
    DataSource, FolderShape, ImageDataset, ImageFolder, LabelledItem, NamedDataset, Normalization,
    NpyArray, label_balanced, random_subset,
};
use baal_zoo::images::{NormalizedImage, NormalizedImages, normalized_batcher};
use baal_zoo::models::{ModelKind, ModelVisitor};
use burn::data::dataset::{Dataset, InMemDataset};
use burn::tensor::{Device, Tensor};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use baal_zoo::folder::{
    FolderError, MODEL_CARD_FORMAT, ModelCard, ModelFolderWriter, TrainMetrics, check_target,
};

use crate::score::ScoreError;

/// Options of `baal train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The labelled images: a folder whose class sub-folders hold them (its top-level files
    /// are unlabelled and not trained on), `fashion-mnist`, `mnist` or `cifar10` (a balanced
    /// part of the training split; the test split measures the model), or a `.npy` array of
    /// images `[N, H, W]` or `[N, C, H, W]` with `--labels` and `--classes`.
    pub data: String,
    /// The model folder to write (weights.bpk and model.json).
    #[arg(long)]
    pub output: PathBuf,
    /// Replace the model folder when it exists and is not empty.
    #[arg(long)]
    pub force: bool,
    /// A folder's images are resized to this square side.
    #[arg(long, default_value_t = 32)]
    pub image_size: usize,
    /// A folder's images as 1 (grey) or 3 (RGB) channels.
    #[arg(long, default_value_t = 3)]
    pub channels: usize,
    /// Folder of a named dataset's files (default: Debian's for Fashion-MNIST and MNIST).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// A `.npy` array's labels: a `.npy` array of one integer class per image.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Class names, in class order, separated by commas (required for a `.npy` array; a
    /// folder's default is its sub-folders' names, sorted).
    #[arg(long, value_delimiter = ',')]
    pub classes: Vec<String>,
    /// Labelled items of a named dataset's training split, balanced over its classes.
    #[arg(long, default_value_t = 1000)]
    pub labelled: usize,
    /// Random test items of a named dataset that measure the model (0: none).
    #[arg(long, default_value_t = 1000)]
    pub test_size: usize,
    /// Part of a folder's or array's labelled items held out of training to measure the
    /// model, the same part of each class (0: none).
    #[arg(long, default_value_t = 0.2)]
    pub validation_fraction: f64,
    /// The model.
    #[arg(long, value_enum, default_value_t = ModelKind::SmallCnn)]
    pub model: ModelKind,
    /// Training epochs.
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    /// At least this many gradient steps (more epochs when the data is small).
    #[arg(long, default_value_t = 200)]
    pub min_steps: usize,
    /// Items per gradient step.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub learning_rate: f64,
    /// Seed of the weights, the labelled and held-out items, and the batches.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Device: cpu (flex), wgpu, vulkan, metal, cuda[:N], tch-cpu, tch-cuda[:N], or
    /// remote:ws://HOST:PORT.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

fn input(e: impl std::fmt::Display) -> ScoreError {
    ScoreError::Input(e.to_string())
}

fn failed(e: impl std::fmt::Display) -> ScoreError {
    ScoreError::Failed(e.to_string())
}

/// The images a model is trained and measured on, with true labels.
struct TrainingData {
    train: ImageDataset,
    validation: Option<ImageDataset>,
    classes: Vec<String>,
    normalization: Normalization,
}

/// Runs `baal train`: fits the model, writes the model folder and returns its metrics.
pub fn train(args: &TrainArgs) -> Result<TrainMetrics, ScoreError> {
    check_target(&args.output, args.force).map_err(output_error)?;
    let device = baal::device::parse_device(&args.device).map_err(input)?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let data = load(args, &mut rng)?;
    if data.train.len() < 2 {
        return Err(input(format!(
            "{}: {} labelled image(s) to train on; at least 2",
            args.data,
            data.train.len()
        )));
    }
    // Written beside the output and renamed into place: a crash leaves no half a folder.
    let writer = ModelFolderWriter::beside(&args.output)?;
    device.seed(args.seed);
    let visitor = FitVisitor {
        args,
        data: &data,
        device: &device,
        weights: writer.weights_path(),
    };
    let metrics = on_flex_workers(&device, || {
        args.model
            .build(data.train.shape(), data.classes.len(), &device, visitor)
    })
    .map_err(input)??;
    let card = ModelCard {
        format: MODEL_CARD_FORMAT,
        model: args.model,
        image_shape: data.train.shape(),
        classes: data.classes.clone(),
        normalization: data.normalization.clone(),
        metrics: metrics.clone(),
        data: args.data.clone(),
        labelled: data.train.len(),
        seed: args.seed,
        epochs: args.epochs,
        min_steps: args.min_steps,
        version: None,
        init_model: None,
    };
    // The output is checked again: it may have been filled while the model trained.
    writer
        .install(&card, &args.output, args.force)
        .map_err(output_error)?;
    eprintln!("{}", summary(args, &card));
    Ok(metrics)
}

/// A model folder error about `--output`, with what to do about a folder that is taken.
fn output_error(error: FolderError) -> ScoreError {
    match error {
        FolderError::Exists { .. } => input(format!(
            "{error}; give another --output, or --force to replace it"
        )),
        other => other.into(),
    }
}

/// One line for people: what was trained and how it did.
fn summary(args: &TrainArgs, card: &ModelCard) -> String {
    let m = &card.metrics;
    let measured = match &m.validation {
        Some(v) => format!(
            "on {} held-out images: accuracy {:.3}, NLL {:.3}, ECE {:.3}",
            m.validation_items, v.accuracy, v.nll, v.ece
        ),
        None => "no held-out images to measure it on".to_string(),
    };
    format!(
        "baal train: {} on {} labelled images of {} classes, {} epochs ({} steps, {:.1} s); \
         {measured}; model folder {}",
        clap::ValueEnum::to_possible_value(&args.model)
            .map_or_else(|| format!("{:?}", args.model), |v| v.get_name().to_string()),
        card.labelled,
        card.classes.len(),
        m.epochs_run,
        m.gradient_steps,
        m.seconds,
        args.output.display()
    )
}

/// Reads the data argument into training and held-out images.
fn load(args: &TrainArgs, rng: &mut ChaCha8Rng) -> Result<TrainingData, ScoreError> {
    if !(args.validation_fraction.is_finite() && (0.0..1.0).contains(&args.validation_fraction)) {
        return Err(input(format!(
            "--validation-fraction {}: from 0 (none) to below 1",
            args.validation_fraction
        )));
    }
    let source = args.data.parse::<DataSource>().map_err(input)?;
    if args.labels.is_some() && !matches!(source, DataSource::Npy(_)) {
        return Err(input(format!(
            "{}: --labels is for a .npy array of images",
            args.data
        )));
    }
    match source {
        DataSource::Named(named) => load_named(args, named, rng),
        DataSource::Folder(dir) => {
            let shape = FolderShape {
                channels: args.channels,
                size: args.image_size,
            };
            let folder = ImageFolder::load(&dir, &args.classes, shape).map_err(input)?;
            if folder.labelled.is_empty() {
                return Err(input(format!(
                    "{}: no labelled image: put each class's images in a sub-folder named \
                     after it (top-level images are not trained on)",
                    dir.display()
                )));
            }
            split_labelled(args, &folder.images, &folder.labelled, folder.classes, rng)
        }
        DataSource::Npy(path) => {
            let labels_path = args.labels.as_deref().ok_or_else(|| {
                input(format!(
                    "{}: give --labels (a .npy array of one class per image)",
                    path.display()
                ))
            })?;
            if args.classes.len() < 2 {
                return Err(input(format!(
                    "{}: give --classes with at least 2 names",
                    path.display()
                )));
            }
            let images = ImageDataset::from_npy_images(&path, args.classes.len()).map_err(input)?;
            let labels = read_labels(labels_path, images.len(), args.classes.len())?;
            let labelled: Vec<(usize, usize)> = labels.into_iter().enumerate().collect();
            split_labelled(args, &images, &labelled, args.classes.clone(), rng)
        }
    }
}

/// A balanced labelled part of a named dataset's training split and a random part of its
/// test split, drawn in that order from `rng`.
fn load_named(
    args: &TrainArgs,
    named: NamedDataset,
    rng: &mut ChaCha8Rng,
) -> Result<TrainingData, ScoreError> {
    let classes: Vec<String> = if args.classes.is_empty() {
        named.classes().iter().map(|c| (*c).to_string()).collect()
    } else if args.classes.len() == named.classes().len() {
        args.classes.clone()
    } else {
        return Err(input(format!(
            "--classes: {} names for {}, which has {} classes",
            args.classes.len(),
            named.title(),
            named.classes().len()
        )));
    };
    let splits = named.load(args.data_dir.as_deref()).map_err(input)?;
    let train: Vec<usize> = label_balanced(splits.train.labels(), args.labelled, rng)
        .into_iter()
        .map(|index| index.get())
        .collect();
    let test = random_subset(splits.test.len(), args.test_size, rng);
    let with_labels = |images: &ImageDataset, indices: &[usize]| {
        let items: Vec<(usize, usize)> = indices
            .iter()
            .map(|&i| (i, usize::from(images.labels()[i])))
            .collect();
        gather(images, &items, classes.len())
    };
    let validation = if test.is_empty() {
        None
    } else {
        Some(with_labels(&splits.test, &test)?)
    };
    Ok(TrainingData {
        train: with_labels(&splits.train, &train)?,
        validation,
        classes,
        normalization: named.normalization(),
    })
}

/// Holds out `--validation-fraction` of each class of `labelled` (`(index, class)` pairs of
/// `images`), keeping at least one image of each class for training; the rest trains.
fn split_labelled(
    args: &TrainArgs,
    images: &ImageDataset,
    labelled: &[(usize, usize)],
    classes: Vec<String>,
    rng: &mut ChaCha8Rng,
) -> Result<TrainingData, ScoreError> {
    if labelled.len() < 2 {
        return Err(input(format!(
            "{}: {} labelled image(s); at least 2",
            args.data,
            labelled.len()
        )));
    }
    let mut train = Vec::new();
    let mut validation = Vec::new();
    for class in 0..classes.len() {
        let mut items: Vec<(usize, usize)> = labelled
            .iter()
            .copied()
            .filter(|&(_, c)| c == class)
            .collect();
        items.shuffle(rng);
        let held = (args.validation_fraction * items.len() as f64).round() as usize;
        let held = held.min(items.len().saturating_sub(1));
        validation.extend_from_slice(&items[..held]);
        train.extend_from_slice(&items[held..]);
    }
    train.sort_unstable();
    validation.sort_unstable();
    let train = gather(images, &train, classes.len())?;
    let normalization = Normalization::of_images(&train).map_err(input)?;
    let validation = if validation.is_empty() {
        None
    } else {
        Some(gather(images, &validation, classes.len())?)
    };
    Ok(TrainingData {
        train,
        validation,
        classes,
        normalization,
    })
}

/// The images at the `(index, class)` pairs `items` of `images`, labelled with those classes.
fn gather(
    images: &ImageDataset,
    items: &[(usize, usize)],
    classes: usize,
) -> Result<ImageDataset, ScoreError> {
    let indices: Vec<usize> = items.iter().map(|&(index, _)| index).collect();
    let labels = items
        .iter()
        .map(|&(_, class)| {
            u8::try_from(class).map_err(|_| input(format!("class {class}: over 255")))
        })
        .collect::<Result<Vec<u8>, _>>()?;
    images
        .select(&indices)
        .and_then(|picked| picked.with_labels(labels, classes))
        .map_err(input)
}

/// A `.npy` array of one class per image, each below `classes`.
fn read_labels(path: &Path, images: usize, classes: usize) -> Result<Vec<usize>, ScoreError> {
    let bad = |what: String| input(format!("{}: {what}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let labels = NpyArray::parse(&bytes)
        .and_then(|array| array.to_class_labels())
        .map_err(bad)?;
    if labels.len() != images {
        return Err(bad(format!("{} labels for {images} images", labels.len())));
    }
    if let Some((item, &label)) = labels.iter().enumerate().find(|&(_, &l)| l >= classes) {
        return Err(bad(format!(
            "label {label} of image {item}, but --classes names {classes} classes"
        )));
    }
    Ok(labels)
}

/// Fits the model the zoo built, measures it and saves its weights.
struct FitVisitor<'a> {
    args: &'a TrainArgs,
    data: &'a TrainingData,
    device: &'a Device,
    weights: PathBuf,
}

impl ModelVisitor for FitVisitor<'_> {
    type Output = Result<TrainMetrics, ScoreError>;

    fn visit<M: baal::active::Classifier<Input = Tensor<4>>>(self, model: M) -> Self::Output {
        let args = self.args;
        let config = TrainerConfig::new()
            .with_optimizer(OptimizerConfig::adam(args.learning_rate))
            .with_batch_size(args.batch_size)
            .with_epochs(args.epochs)
            .with_min_gradient_steps(args.min_steps)
            .with_seed(args.seed);
        let mut trainer =
            Trainer::new(model, self.device, normalized_batcher(), config).map_err(input)?;
        let train =
            NormalizedImages::all(&self.data.train, &self.data.normalization).map_err(input)?;
        let labelled = InMemDataset::new(
            (0..train.len())
                .map(|i| {
                    train.get(i).map(|item| LabelledItem {
                        label: usize::from(item.label),
                        item,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(failed)?,
        );
        let fit = trainer.fit(&labelled).map_err(failed)?;
        let (validation_items, validation) = match &self.data.validation {
            Some(images) => {
                let images =
                    NormalizedImages::all(images, &self.data.normalization).map_err(input)?;
                let metrics = trainer
                    .evaluate(&images, &|item: &NormalizedImage| usize::from(item.label))
                    .map_err(failed)?;
                (images.len(), Some(metrics))
            }
            None => (0, None),
        };
        trainer.save_weights(&self.weights).map_err(failed)?;
        Ok(TrainMetrics {
            train_loss: fit.train_loss,
            epochs_run: fit.epochs,
            gradient_steps: fit.gradient_steps,
            seconds: fit.seconds,
            validation_items,
            validation,
        })
    }
}
