//! `baal serve`: its arguments, loading the data, resuming the state, starting the server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use baal_active::TrainerConfig;
use baal_bayesian::SeedPlan;
use baal_data::{
    Checkpoint, DataSource, DatasetIndex, ImageDataset, Normalization, label_balanced,
    random_subset,
};
use baal_heuristics::{HeuristicKind, HeuristicParams};
use baal_zoo::images::NormalizedImages;
use baal_zoo::models::ModelKind;
use burn::data::dataset::Dataset;
use burn::tensor::Device;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::ServeError;
use crate::http::Server;
use crate::items::{Items, load_folder, load_npy};
use crate::scorer::ZooScorer;
use crate::service::Service;
use crate::store::{LabelStore, StoreConfig};
use baal_data::FolderShape;

/// The arguments of `baal serve`.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// What to label: `fashion-mnist`, `mnist` or `cifar10` (their training split is the pool,
    /// their test split measures the model), a `.npy` array of images `[N, H, W]` or
    /// `[N, C, H, W]`, or a folder of PNG/JPEG files (sub-folders named after classes hold
    /// labelled seed images).
    pub data: String,
    /// Class names, comma-separated, in class order (the named datasets have theirs; a folder's
    /// default is its sub-folders' names).
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
    /// A folder's images are resized to this square side.
    #[arg(long, default_value_t = 32)]
    pub image_size: usize,
    /// A folder's images as 1 (grey) or 3 (RGB) channels.
    #[arg(long, default_value_t = 3)]
    pub channels: usize,
    /// The model.
    #[arg(long, value_enum, default_value_t = ModelKind::SmallCnn)]
    pub model: ModelKind,
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
    /// The state folder: labels, model rounds, token; resumed when it exists.
    #[arg(long, default_value = "baal-serve-state")]
    pub state: PathBuf,
    /// Where to listen; 127.0.0.1 unless you mean to expose it.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub addr: SocketAddr,
    /// Seed of the pool subset, the first order, the weights and the masks.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// What the state folder was made for; a resume with other settings is refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct StateSettings {
    data: String,
    classes: Vec<String>,
    n_items: usize,
    pool_size: Option<usize>,
    seed: u64,
}

/// Loads what `args` names.
///
/// # Errors
/// The data cannot be found or read, or the classes do not fit it.
pub fn load_items(args: &ServeArgs) -> Result<(Items, Normalization), ServeError> {
    let source: DataSource = args.data.parse()?;
    let (items, normalization) = match source {
        DataSource::Named(named) => {
            let splits = named.load(args.data_dir.as_deref())?;
            let classes = if args.classes.is_empty() {
                named.classes().iter().map(|c| (*c).to_string()).collect()
            } else {
                args.classes.clone()
            };
            (
                split_items(args, splits.train, splits.test, classes)?,
                named.normalization(),
            )
        }
        DataSource::Folder(path) => {
            let shape = FolderShape {
                channels: args.channels,
                size: args.image_size,
            };
            let items = load_folder(&path, &args.classes, shape)?;
            let normalization = Normalization::of_images(&items.images)?;
            (items, normalization)
        }
        DataSource::Npy(path) => {
            if args.classes.len() < 2 {
                return Err(ServeError::Config(format!(
                    "{}: give the class names with --classes (at least 2)",
                    path.display()
                )));
            }
            let items = load_npy(&path, args.classes.clone())?;
            let normalization = Normalization::of_images(&items.images)?;
            (items, normalization)
        }
    };
    Ok((items, normalization))
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
/// Bad arguments, data that cannot be loaded, a state folder of other settings, an address
/// that cannot be bound.
pub fn start(args: &ServeArgs, device: &Device) -> Result<(Server, String), ServeError> {
    let (items, normalization) = load_items(args)?;
    if args.retrain_every == 0 || args.iterations == 0 || args.query_size == 0 {
        return Err(ServeError::Config(
            "--retrain-every, --iterations and --query-size must be at least 1".into(),
        ));
    }
    prepare_state_dir(&args.state)?;
    let settings = StateSettings {
        data: args.data.clone(),
        classes: items.classes.clone(),
        n_items: items.len(),
        pool_size: args.pool_size,
        seed: args.seed,
    };
    let settings_path = args.state.join("settings.json");
    if settings_path.exists() {
        let saved: StateSettings = Checkpoint::load(&settings_path)?;
        if saved != settings {
            return Err(ServeError::Config(format!(
                "{} holds the state of other settings ({saved:?}); these are {settings:?}: use another --state folder",
                args.state.display()
            )));
        }
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
    let normalized = |images: &ImageDataset| {
        NormalizedImages::all(images, &normalization).map_err(|e| ServeError::Config(e.to_string()))
    };
    let scorer = ZooScorer {
        images: normalized(&items.images)?,
        test: items.test.as_ref().map(normalized).transpose()?,
        classes: items.classes.len(),
        model: args.model,
        heuristic,
        iterations: args.iterations,
        trainer: TrainerConfig::new()
            .with_epochs(args.epochs)
            .with_min_gradient_steps(args.min_steps),
        seed: args.seed,
        device: device.clone(),
        rounds: 0,
    };
    let (service, _worker) = Service::start(store, items, Box::new(scorer), token.clone())?;
    let server = Server::start(Arc::clone(&service), args.addr)?;
    Ok((server, token))
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
