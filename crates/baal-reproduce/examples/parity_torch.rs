//! The Rust side of `cargo xtask parity-torch`: trains the zoo's `SmallCnn` with our
//! [`Trainer`] on exactly the batches PyTorch trained on, from PyTorch's initial weights, and
//! compares the loss after every step.
//!
//! `cargo run --release -p baal-reproduce --example parity_torch -- DIR [--tolerance 0.02]`
//! reads what `benches/torch/parity.py write DIR` wrote (`init.pt`, `images.npy`,
//! `labels.npy`, `batches.npy`, `torch_losses.npy`), writes `rust_losses.npy`, prints the
//! differences and exits non-zero when a loss differs from PyTorch's by more than 1e-3
//! (relative) in one of the first 25 steps, or by more than the tolerance on average over all
//! steps. Dropout is off on
//! both sides, as it must be for the losses to be comparable step by step. `--epsilon` sets
//! our Adam's epsilon (default PyTorch's 1e-8; with Burn's 1e-5 the check fails).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use baal::active::{OptimizerConfig, Trainer, TrainerConfig};
use baal::burn::data::dataset::InMemDataset;
use baal::burn::tensor::Device;
use baal::data::LabelledItem;
use baal::data::formats::npy::{NpyArray, encode_f32};
use baal_zoo::images::{NormalizedImage, normalized_batcher};
use baal_zoo::models::{SmallCnn, SmallCnnConfig};
use burn_store::{ModuleSnapshot, PytorchStore};

type Error = Box<dyn std::error::Error>;

fn read(dir: &Path, name: &str) -> Result<NpyArray, Error> {
    Ok(NpyArray::read(dir.join(name))?)
}

/// PyTorch's initial weights in the zoo's model, dropout off.
fn model(dir: &Path, device: &Device) -> Result<SmallCnn, Error> {
    let mut model = SmallCnnConfig::new()
        .with_conv_dropout(0.0)
        .with_dense_dropout(0.0)
        .init(device)?;
    let mut store = PytorchStore::from_file(dir.join("init.pt")).allow_partial(false);
    let result = model.load_from(&mut store)?;
    if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
        return Err(format!(
            "init.pt does not fit SmallCnn: errors {:?}, missing {:?}, unused {:?}",
            result.errors, result.missing, result.unused
        )
        .into());
    }
    Ok(model)
}

fn run(dir: &Path, tolerance: f64, epsilon: f32) -> Result<bool, Error> {
    let device = Device::default();
    let images = read(dir, "images.npy")?;
    let labels = read(dir, "labels.npy")?.to_class_labels()?;
    let batches = read(dir, "batches.npy")?;
    let torch_losses = read(dir, "torch_losses.npy")?.to_f32();
    let [n, c, h, w] = images.shape[..] else {
        return Err(format!(
            "images.npy: expected [N, 1, 28, 28], got {:?}",
            images.shape
        )
        .into());
    };
    let pixels = images.to_f32();
    let items: Vec<_> = (0..n)
        .map(|i| {
            let label = u8::try_from(labels[i]).unwrap_or(u8::MAX);
            LabelledItem {
                item: NormalizedImage {
                    pixels: pixels[i * c * h * w..(i + 1) * c * h * w].to_vec(),
                    shape: [c, h, w],
                    label,
                },
                label,
            }
        })
        .collect();
    let labelled = InMemDataset::new(items);
    let [steps, batch] = batches.shape[..] else {
        return Err(format!(
            "batches.npy: expected [steps, batch], got {:?}",
            batches.shape
        )
        .into());
    };
    let plan = batches.to_class_labels()?;
    let plan: Vec<Vec<usize>> = plan.chunks(batch).map(<[usize]>::to_vec).collect();
    let config = TrainerConfig::default()
        .with_optimizer(OptimizerConfig::Adam {
            learning_rate: 1e-3,
            weight_decay: 0.0,
            epsilon,
        })
        .with_batch_size(batch);
    let model = model(dir, &device)?;
    let mut trainer = Trainer::new(model, &device, normalized_batcher(), config)?;
    let (_, losses) = trainer.fit_batches(&labelled, &plan)?;
    std::fs::write(dir.join("rust_losses.npy"), encode_f32(&[steps], &losses))?;
    Ok(compare(&losses, &torch_losses, tolerance, epsilon))
}

/// Prints the losses side by side and says whether ours stay within the tolerances of
/// PyTorch's.
fn compare(losses: &[f32], torch_losses: &[f32], tolerance: f64, epsilon: f32) -> bool {
    let steps = losses.len();
    // Float32 sums in another order drift apart slowly over many steps (training is
    // chaotic, and one batch's loss is noisy), so the first steps are held to a tight
    // tolerance, one step at a time, and the whole run to a mean: a real difference (ε,
    // initialisation, scaling, reduction) shows from the first steps.
    let relative: Vec<f64> = losses
        .iter()
        .zip(torch_losses)
        .map(|(&o, &t)| (f64::from(o) - f64::from(t)).abs() / f64::from(t).abs().max(1e-6))
        .collect();
    for (step, (&ours, &theirs)) in losses.iter().zip(torch_losses).enumerate() {
        if step < 5 || step % 25 == 24 || step + 1 == steps {
            println!(
                "step {:>4}: torch {theirs:.5}  ours {ours:.5}  relative difference {:.1e}",
                step + 1,
                relative[step]
            );
        }
    }
    let strict = &relative[..STRICT_STEPS.min(steps)];
    let worst_strict = strict.iter().copied().fold(0.0, f64::max);
    let first_off = strict.iter().position(|&r| r > STRICT_TOLERANCE);
    let mean = relative.iter().sum::<f64>() / steps as f64;
    println!(
        "{steps} steps, Adam epsilon {epsilon:e}: largest relative difference over the first \
         {STRICT_STEPS} steps {worst_strict:.1e} (allowed {STRICT_TOLERANCE:e}{}), mean over all \
         steps {mean:.1e} (allowed {tolerance})",
        first_off.map_or(String::new(), |s| format!(
            ", first exceeded at step {}",
            s + 1
        ))
    );
    first_off.is_none() && mean <= tolerance
}

/// Steps held to [`STRICT_TOLERANCE`].
const STRICT_STEPS: usize = 25;
/// Relative loss difference allowed over the first [`STRICT_STEPS`] steps.
const STRICT_TOLERANCE: f64 = 1e-3;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut dir: Option<PathBuf> = None;
    let mut tolerance = 0.02;
    let mut epsilon = OptimizerConfig::TORCH_ADAM_EPSILON;
    while let Some(arg) = args.next() {
        let number = |value: Option<String>| value.and_then(|t| t.parse::<f64>().ok());
        match arg.as_str() {
            "--tolerance" => match number(args.next()) {
                Some(t) => tolerance = t,
                None => return usage("--tolerance needs a number"),
            },
            "--epsilon" => match number(args.next()) {
                Some(e) => epsilon = e as f32,
                None => return usage("--epsilon needs a number"),
            },
            _ => dir = Some(arg.into()),
        }
    }
    let Some(dir) = dir else {
        return usage("no folder given");
    };
    match run(&dir, tolerance, epsilon) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("parity_torch: {e}");
            ExitCode::from(2)
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!(
        "parity_torch: {problem}\nusage: parity_torch DIR [--tolerance 0.02] [--epsilon 1e-8] \
         (DIR written by benches/torch/parity.py)"
    );
    ExitCode::from(2)
}
