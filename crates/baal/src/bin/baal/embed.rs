//! `baal embed`: the model's embeddings of every pool item (the input of its last linear
//! layer, dropout off), `[N, D]` in a float32 `.npy` file, for `baal score --heuristic
//! coreset|badge --embeddings`.

use std::path::{Path, PathBuf};

use baal::active::{Classifier, Predictor};
use baal::bayesian::on_flex_workers;
use baal::data::formats::npy::encode_f32;
use baal::heuristics::Embeddings;
use baal_zoo::images::NormalizedImages;
use baal_zoo::models::{ModelKind, ModelVisitor};
use burn::tensor::{Device, Tensor};
use serde::Serialize;

use crate::score::ScoreError;
use crate::shards::{PoolSourceArgs, PredictModel, input, load_pool, zoo_predictor};

/// Options of `baal embed`.
#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub source: PoolSourceArgs,
    /// Items per forward pass.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// The `.npy` file to write, `[N, D]` float32 in pool order (written atomically; an
    /// existing file is replaced).
    #[arg(long)]
    pub output: PathBuf,
    /// Device: cpu (flex), wgpu, vulkan, metal, cuda[:N], tch-cpu, tch-cuda[:N].
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// What `baal embed` wrote.
#[derive(Debug, Serialize)]
pub struct EmbedReport {
    /// Pool items (rows).
    pub items: usize,
    /// Features per item (columns).
    pub dim: usize,
    /// The file written.
    pub output: PathBuf,
}

/// Runs `baal embed`.
///
/// # Errors
/// Bad options, a pool or model that cannot be read or do not fit each other (exit 2), a
/// file that cannot be written (exit 1).
pub fn embed(args: &EmbedArgs) -> Result<EmbedReport, ScoreError> {
    let device = baal::device::parse_device(&args.device).map_err(input)?;
    if args.batch_size == 0 {
        return Err(input("--batch-size must be at least 1"));
    }
    let model = PredictModel::from_args(&args.source)?;
    let pool = load_pool(&args.source, &model)?;
    let visitor = EmbedVisitor {
        weights: &model.weights,
        kind: model.kind,
        pool: &pool.images,
        batch_size: args.batch_size,
        device: &device,
    };
    let (values, items, dim) = on_flex_workers(&device, || {
        model
            .kind
            .build(pool.images.shape(), pool.classes, &device, visitor)
    })
    .map_err(input)??;
    baal::data::write_file_atomically(&args.output, &encode_f32(&[items, dim], &values))
        .map_err(|e| ScoreError::Failed(e.to_string()))?;
    Ok(EmbedReport {
        items,
        dim,
        output: args.output.clone(),
    })
}

/// Loads the weights into the zoo model and embeds the pool: the values, rows and columns.
struct EmbedVisitor<'a> {
    weights: &'a Path,
    kind: ModelKind,
    pool: &'a NormalizedImages,
    batch_size: usize,
    device: &'a Device,
}

impl ModelVisitor for EmbedVisitor<'_> {
    type Output = Result<(Vec<f32>, usize, usize), ScoreError>;

    fn visit<M: Classifier<Input = Tensor<4>>>(self, model: M) -> Self::Output {
        let predictor =
            zoo_predictor(model, self.weights, self.kind, self.device, self.batch_size)?;
        let (mut values, mut dim) = (Vec::new(), 0);
        predictor
            .embed_chunks(self.pool, &mut |_, chunk| {
                // Read back and checked (finite) as the loop's embeddings are.
                let chunk = Embeddings::from_tensor(chunk)?;
                dim = chunk.dim();
                values.extend(chunk.into_vec());
                Ok(())
            })
            .map_err(|e| ScoreError::Failed(e.to_string()))?;
        let items = values.len().checked_div(dim).unwrap_or(0);
        Ok((values, items, dim))
    }
}
