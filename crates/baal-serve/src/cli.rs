//! `baal serve`: its arguments, loading the data, resuming the state, starting the server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::ServeError;
use crate::export::StateSettings;
use crate::http::Server;
use crate::import::read_label_file;
use crate::items::{Items, load_folder, load_npy};
use crate::label_file::ServedPool;
use crate::models::{CardContext, InitModel, ModelKeeper};
use crate::scorer::ZooScorer;
use crate::service::Service;
use crate::store::{LabelStore, StoreConfig};
use baal_active::TrainerConfig;
use baal_bayesian::SeedPlan;
use baal_data::FolderShape;
use baal_data::{
    Checkpoint, DataSource, DatasetIndex, ImageDataset, Normalization, label_balanced,
    random_subset,
};
use baal_heuristics::{HeuristicKind, HeuristicParams};
use baal_zoo::folder::{FolderError, ModelCard, ModelFolder};
use baal_zoo::images::NormalizedImages;
use baal_zoo::models::ModelKind;
use burn::data::dataset::Dataset;
use burn::tensor::Device;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The arguments of `baal serve`.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// What to label: `fashion-mnist`, `mnist` or `cifar10` (their training split is the pool,
    /// their test split measures the model), a `.npy` array of images `[N, H, W]` or
    /// `[N, C, H, W]`, or a folder of PNG/JPEG files (sub-folders named after classes hold
    /// labelled seed images).
    pub data: String,
    /// Class names, comma-separated, in class order (the named datasets have theirs; a folder's
    /// default is its sub-folders' names; with --init-model, the model's).
    #[arg(long, value_delimiter = ',')]
    pub classes: Vec<String>,
    /// Folder of a named dataset's files (default: Debian's for Fashion-MNIST and MNIST).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Label only a random subset of this many items of the pool.
    #[arg(long)]
    pub pool_size: Option<usize>,
    /// Test images of a named dataset the model is measured on after each retrain.
    #[arg(long, default_value_t = 1000)]
    pub test_size: usize,
    /// Start a named dataset with this many items labelled with their true classes (balanced),
    /// as a seed set.
    #[arg(long, default_value_t = 0)]
    pub seed_labels: usize,
    /// A folder's images are resized to this square side [default: 32, or --init-model's].
    #[arg(long)]
    pub image_size: Option<usize>,
    /// A folder's images as 1 (grey) or 3 (RGB) channels [default: 3, or --init-model's].
    #[arg(long)]
    pub channels: Option<usize>,
    /// The model [default: small-cnn, or --init-model's].
    #[arg(long, value_enum)]
    pub model: Option<ModelKind>,
    /// A model folder (from `baal train`, or a state's models/round-NNNNNN) that ranks the
    /// pool before the first retrain and that every retrain starts from instead of fresh
    /// weights; its images are normalised with its statistics. Its classes, channels and
    /// image size must be the data's.
    #[arg(long, value_name = "DIR")]
    pub init_model: Option<PathBuf>,
    /// Keep the model folders of the latest N rounds in STATE/models/round-NNNNNN (0: none).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub keep_models: usize,
    /// The heuristic that ranks the pool.
    #[arg(long, value_enum, default_value_t = HeuristicKind::Bald)]
    pub heuristic: HeuristicKind,
    /// Items chosen jointly by batch-aware heuristics (BatchBALD); the rest follow by score.
    #[arg(long, default_value_t = 10)]
    pub query_size: usize,
    /// MC iterations of the pool predictions.
    #[arg(long, default_value_t = 20)]
    pub iterations: usize,
    /// Retrain and re-rank after this many new labels.
    #[arg(long, default_value_t = 10)]
    pub retrain_every: usize,
    /// Training epochs per retrain.
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    /// At least this many gradient steps per retrain.
    #[arg(long, default_value_t = 200)]
    pub min_steps: usize,
    /// Seconds an annotator holds an item before it returns to the queue.
    #[arg(long, default_value_t = 300)]
    pub lease_seconds: u64,
    /// The state folder: labels, model rounds, kept models, token; resumed when it exists.
    #[arg(long, default_value = "baal-serve-state")]
    pub state: PathBuf,
    /// Where to listen; 127.0.0.1 unless you mean to expose it.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub addr: SocketAddr,
    /// Seed of the pool subset, the first order, the weights and the masks.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Start from labels made elsewhere: a CSV or JSON label file as `baal export` writes it
    /// (items matched by file name in a folder pool, else by index; classes by name). Items
    /// without a label get the file's; a label the state holds already is kept. A bad line
    /// applies nothing.
    #[arg(long)]
    pub labels: Option<PathBuf>,
}

/// Loads what `args` names, with `--init-model`'s classes, image shape and normalisation
/// where `args` gives none.
///
/// # Errors
/// The data cannot be found or read, or the classes do not fit it; `--init-model` is not a
/// model folder.
pub fn load_items(args: &ServeArgs) -> Result<(Items, Normalization), ServeError> {
    let init = args
        .init_model
        .as_deref()
        .map(read_init_model)
        .transpose()?;
    load_items_for(args, init.as_ref().map(|folder| &folder.card))
}

/// A model folder error as a configuration error (exit 2): the message names the file.
fn config(error: FolderError) -> ServeError {
    ServeError::Config(error.to_string())
}

/// Reads the `--init-model` folder.
fn read_init_model(dir: &Path) -> Result<ModelFolder, ServeError> {
    ModelFolder::read(dir).map_err(config)
}

/// Loads what `args` names; the classes, a folder's image shape and the normalisation are
/// `init`'s where `args` gives none.
fn load_items_for(
    args: &ServeArgs,
    init: Option<&ModelCard>,
) -> Result<(Items, Normalization), ServeError> {
    let source: DataSource = args.data.parse()?;
    let given_classes = match (args.classes.is_empty(), init) {
        (true, Some(card)) => card.classes.clone(),
        _ => args.classes.clone(),
    };
    let (items, normalization) = match source {
        DataSource::Named(named) => {
            let splits = named.load(args.data_dir.as_deref())?;
            let classes = if given_classes.is_empty() {
                named.classes().iter().map(|c| (*c).to_string()).collect()
            } else {
                given_classes
            };
            (
                split_items(args, splits.train, splits.test, classes)?,
                named.normalization(),
            )
        }
        DataSource::Folder(path) => {
            let [channels, size, _] = init.map_or([3, 32, 32], |card| card.image_shape);
            let shape = FolderShape {
                channels: args.channels.unwrap_or(channels),
                size: args.image_size.unwrap_or(size),
            };
            let items = load_folder(&path, &given_classes, shape)?;
            let normalization = Normalization::of_images(&items.images)?;
            (items, normalization)
        }
        DataSource::Npy(path) => {
            if given_classes.len() < 2 {
                return Err(ServeError::Config(format!(
                    "{}: give the class names with --classes (at least 2)",
                    path.display()
                )));
            }
            let items = load_npy(&path, given_classes)?;
            let normalization = Normalization::of_images(&items.images)?;
            (items, normalization)
        }
    };
    // The model's inputs are normalised as they were in its training.
    let normalization = init.map_or(normalization, |card| card.normalization.clone());
    Ok((items, normalization))
}

/// The model: `--model`, else `--init-model`'s, else a small CNN; a `--model` that is not
/// `--init-model`'s is refused.
fn model_kind(args: &ServeArgs, init: Option<&ModelFolder>) -> Result<ModelKind, ServeError> {
    match (args.model, init) {
        (Some(given), Some(folder)) if given != folder.card.model => {
            Err(ServeError::Config(format!(
                "{}: the model is a {}, --model says {}",
                folder.card_path.display(),
                folder.card.model.name(),
                given.name()
            )))
        }
        (Some(given), _) => Ok(given),
        (None, Some(folder)) => Ok(folder.card.model),
        (None, None) => Ok(ModelKind::SmallCnn),
    }
}

/// Checks the `--init-model` folder against the data, and that its weights load into its
/// model on `device` (once, so that a corrupt file is an error now that names it).
fn check_init_model(
    folder: ModelFolder,
    items: &Items,
    device: &Device,
) -> Result<InitModel, ServeError> {
    folder
        .check_data(&items.classes, items.images.shape())
        .map_err(config)?;
    let weights = folder.load_weights(device).map_err(config)?;
    // The card of each round says where its training started, wherever the service runs.
    let dir = std::fs::canonicalize(&folder.dir).unwrap_or_else(|_| folder.dir.clone());
    Ok(InitModel {
        folder: ModelFolder { dir, ..folder },
        weights,
    })
}

/// A named dataset's pool (a subset when asked) and test subset, with balanced seed labels,
/// all drawn from one generator seeded with `--seed`, in that order.
fn split_items(
    args: &ServeArgs,
    train: ImageDataset,
    test: ImageDataset,
    classes: Vec<String>,
) -> Result<Items, ServeError> {
    if classes.len() != train.num_classes() {
        return Err(ServeError::Config(format!(
            "{} class names for a dataset of {} classes",
            classes.len(),
            train.num_classes()
        )));
    }
    // The run's seed itself, not a named stream: state folders made before the seed plan
    // keep the same pool (their labels name items by their position in it).
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let pool = subset(&train, args.pool_size, &mut rng)?;
    let test = subset(&test, Some(args.test_size), &mut rng)?;
    let mut seed_labels: Vec<(DatasetIndex, usize)> =
        label_balanced(pool.labels(), args.seed_labels, &mut rng)
            .into_iter()
            .map(|index| (index, usize::from(pool.labels()[index.get()])))
            .collect();
    seed_labels.sort_unstable();
    Ok(Items {
        images: pool,
        files: None,
        classes,
        seed_labels,
        test: (!test.is_empty()).then_some(test),
    })
}

/// `count` random items of `images` (all when `None` or more than it holds), in item order.
fn subset(
    images: &ImageDataset,
    count: Option<usize>,
    rng: &mut ChaCha8Rng,
) -> Result<ImageDataset, ServeError> {
    let n = images.len();
    Ok(images.select(&random_subset(n, count.unwrap_or(n), rng))?)
}

/// Makes `path` readable and writable by its owner alone (`mode`: 0o600 for a file, 0o700 for
/// a folder); nothing to do off Unix.
fn owner_only(path: &Path, mode: u32) -> Result<(), ServeError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| ServeError::io(path, e))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// The state folder, created if missing, private to its owner (0700): it holds the token and
/// every label.
fn prepare_state_dir(state: &Path) -> Result<(), ServeError> {
    std::fs::create_dir_all(state).map_err(|e| ServeError::io(state, e))?;
    owner_only(state, 0o700)
}

/// The access token kept in the state folder (made on first start, readable by its owner
/// alone: 0600), so that a restart keeps the links and Label Studio's backend URL working.
fn token(state: &Path) -> Result<String, ServeError> {
    let path = state.join("token");
    if path.exists() {
        // A token file of an older version may be readable by anyone.
        owner_only(&path, 0o600)?;
        let token = std::fs::read_to_string(&path).map_err(|e| ServeError::io(&path, e))?;
        let token = token.trim().to_string();
        if token.len() >= 16 && token.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Ok(token);
        }
        return Err(ServeError::Corrupt {
            path,
            reason: "not a token (16 or more letters and digits)".into(),
        });
    }
    let mut rng = ChaCha8Rng::from_os_rng();
    let token: String = (0..32)
        .map(|_| char::from_digit(rng.random_range(0..36), 36).unwrap_or('0'))
        .collect();
    // The folder is private already; the file is made so as well.
    baal_data::write_file_atomically(&path, token.as_bytes())?;
    owner_only(&path, 0o600)?;
    Ok(token)
}

/// Loads the data, opens (or resumes) the state, starts the background retrainer and the
/// server; returns the running server and its access token.
///
/// # Errors
/// Bad arguments, data that cannot be loaded, an `--init-model` that does not fit it (all
/// before the state folder is touched), a state folder of other settings, an address that
/// cannot be bound.
pub fn start(args: &ServeArgs, device: &Device) -> Result<(Server, String), ServeError> {
    let init = args
        .init_model
        .as_deref()
        .map(read_init_model)
        .transpose()?;
    let model = model_kind(args, init.as_ref())?;
    let (items, normalization) = load_items_for(args, init.as_ref().map(|folder| &folder.card))?;
    if args.retrain_every == 0 || args.iterations == 0 || args.query_size == 0 {
        return Err(ServeError::Config(
            "--retrain-every, --iterations and --query-size must be at least 1".into(),
        ));
    }
    let init = init
        .map(|folder| check_init_model(folder, &items, device))
        .transpose()?;
    // Read before the state folder is made: a bad file leaves nothing behind.
    let imported = args
        .labels
        .as_deref()
        .map(|file| {
            let pool = ServedPool {
                items: &items,
                data: Path::new(&args.data),
            };
            read_label_file(file, pool)
        })
        .transpose()?;
    let mut scorer = zoo_scorer(args, &items, &normalization, model, device)?;
    scorer.init = init;
    let (mut store, token) = open_state(args, &items)?;
    if let (Some(file), Some(labels)) = (&args.labels, &imported) {
        let summary = store.import_labels(labels)?;
        tracing::info!(
            file = %file.display(),
            applied = summary.applied,
            skipped = summary.skipped,
            "labels imported"
        );
        if !summary.conflicts.is_empty() {
            tracing::warn!(
                file = %file.display(),
                conflicts = summary.conflicts.len(),
                "items the state had labelled with another class keep the state's label"
            );
        }
    }
    let models = ModelKeeper::open(&args.state, args.keep_models);
    let (service, _worker) =
        Service::start_keeping_models(store, items, Box::new(scorer), token.clone(), models)?;
    let server = Server::start(Arc::clone(&service), args.addr)?;
    Ok((server, token))
}

/// The scorer of `args` over `items` (normalised with `normalization`), from fresh weights.
fn zoo_scorer(
    args: &ServeArgs,
    items: &Items,
    normalization: &Normalization,
    model: ModelKind,
    device: &Device,
) -> Result<ZooScorer, ServeError> {
    let heuristic = args
        .heuristic
        .build(
            &HeuristicParams::new()
                .with_query_size(args.query_size)
                .with_seed(args.seed),
        )
        .map_err(|e| ServeError::Config(e.to_string()))?;
    if heuristic.needs_target() {
        return Err(ServeError::Config(format!(
            "{} needs a target set, which baal serve does not take",
            args.heuristic
        )));
    }
    if heuristic.needs_embeddings() {
        return Err(ServeError::Config(format!(
            "{} selects by the model's embeddings, which baal serve does not compute; use a \
             heuristic that scores predictions (bald, entropy, batch-bald, ...)",
            args.heuristic
        )));
    }
    let normalized = |images: &ImageDataset| {
        NormalizedImages::all(images, normalization).map_err(|e| ServeError::Config(e.to_string()))
    };
    Ok(ZooScorer {
        images: normalized(&items.images)?,
        test: items.test.as_ref().map(normalized).transpose()?,
        classes: items.classes.len(),
        model,
        heuristic,
        iterations: args.iterations,
        trainer: TrainerConfig::new()
            .with_epochs(args.epochs)
            .with_min_gradient_steps(args.min_steps),
        seed: args.seed,
        device: device.clone(),
        rounds: 0,
        card: (args.keep_models > 0).then(|| CardContext {
            data: args.data.clone(),
            classes: items.classes.clone(),
            normalization: normalization.clone(),
        }),
        init: None,
        last_model: None,
    })
}

/// Makes (or resumes) the state folder of `args` for `items`: checks its settings, and opens
/// its token and its label store.
fn open_state(args: &ServeArgs, items: &Items) -> Result<(LabelStore, String), ServeError> {
    prepare_state_dir(&args.state)?;
    let settings = StateSettings {
        data: args.data.clone(),
        classes: items.classes.clone(),
        n_items: items.len(),
        pool_size: args.pool_size,
        seed: args.seed,
        seed_labels: Some(args.seed_labels),
        test_size: Some(args.test_size),
    };
    let settings_path = args.state.join("settings.json");
    if settings_path.exists() {
        let saved: StateSettings = Checkpoint::load(&settings_path)?;
        saved.check_resume(&settings, &args.state)?;
    } else {
        Checkpoint::save(&settings_path, &settings)?;
    }
    let token = token(&args.state)?;
    let mut initial_order: Vec<DatasetIndex> = (0..items.len()).map(DatasetIndex::new).collect();
    let order_seed = SeedPlan::new(args.seed).stream("initial-order");
    initial_order.shuffle(&mut ChaCha8Rng::seed_from_u64(order_seed));
    let store = LabelStore::open(
        &args.state,
        StoreConfig {
            classes: items.classes.clone(),
            n_items: items.len(),
            seed_labels: items.seed_labels.clone(),
            lease_ttl: Duration::from_secs(args.lease_seconds.max(1)),
            retrain_every: args.retrain_every,
            initial_order,
        },
    )?;
    Ok((store, token))
}

/// Runs `baal serve` until the process is stopped: prints the page's address with its token
/// and Label Studio's backend URL.
///
/// # Errors
/// As [`start`], or the server fails.
pub fn run(args: &ServeArgs, device: &Device) -> Result<(), ServeError> {
    let (server, token) = start(args, device)?;
    let addr = server.addr();
    let banner = format!(
        "baal serve: labelling {} at http://{addr}/#token={token}\n  \
         API token:                 {token}\n  \
         Label Studio backend URL:  http://{addr}/ls/{token}\n  \
         state:                     {}\n",
        args.data,
        args.state.display()
    );
    // A closed standard output (`baal serve | head -1`) must not stop the service: println!
    // would panic on the broken pipe.
    if let Err(e) = std::io::Write::write_all(&mut std::io::stdout().lock(), banner.as_bytes()) {
        tracing::warn!("could not print the address to standard output: {e}");
    }
    server.wait()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn the_state_folder_and_the_token_are_the_owners_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        prepare_state_dir(&state).expect("made");
        assert_eq!(mode(&state), 0o700);
        let made = token(&state).expect("a token");
        assert_eq!(mode(&state.join("token")), 0o600);
        // A token file left world-readable by an older version is tightened, and kept.
        std::fs::set_permissions(state.join("token"), std::fs::Permissions::from_mode(0o644))
            .expect("loosened");
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).expect("loosened");
        prepare_state_dir(&state).expect("again");
        assert_eq!(token(&state).expect("the same token"), made);
        assert_eq!(mode(&state.join("token")), 0o600);
        assert_eq!(mode(&state), 0o700);
    }
}
