//! The MC sampler through the public API only.

use std::cell::Cell;

use baal_bayesian::{
    BayesianError, ConsistentMcDropout, ConsistentMcDropoutConfig, DropConnectLinear,
    DropConnectLinearConfig, McContext, McDropConnectConfig, McDropout, McDropoutConfig,
    McSamplerConfig, OutputActivation, Result, StochasticModel,
};
use burn::data::dataset::InMemDataset;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Tensor, TensorData};

/// `Device::default()`, which follows `BURN_DEVICE`; `BAAL_TEST_DEVICE=tch-cuda` picks libtorch's
/// first CUDA device, which `BURN_DEVICE` cannot name.
fn device() -> Device {
    #[cfg(feature = "tch")]
    if std::env::var("BAAL_TEST_DEVICE").as_deref() == Ok("tch-cuda") {
        // burn-tch is deprecated in Burn 0.22 but still the way to reach libtorch.
        #[allow(deprecated)]
        return Device::libtorch_cuda(0);
    }
    Device::default()
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_to_vec_as::<f32>().expect("f32 data")
}

fn assert_close(a: &[f32], b: &[f32], tolerance: f32) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tolerance, "entry {i}: {x} vs {y}");
    }
}

fn sampler(iterations: usize) -> McSamplerConfig {
    McSamplerConfig::new(iterations)
}

/// A small MLP: `linear → relu` trunk, `dropout → linear` head. Counts trunk rows.
#[derive(Module, Debug)]
struct Mlp {
    hidden: Linear,
    dropout: McDropout,
    output: Linear,
}

struct Counted {
    model: Mlp,
    trunk_rows: Cell<usize>,
}

impl Counted {
    fn new(prob: f64, device: &Device) -> Result<Self> {
        Ok(Self {
            model: Mlp {
                hidden: LinearConfig::new(6, 16).init(device),
                dropout: McDropoutConfig::new(prob).init()?,
                output: LinearConfig::new(16, 4).init(device),
            },
            trunk_rows: Cell::new(0),
        })
    }
}

impl StochasticModel for Counted {
    type Input = Tensor<2>;
    type Features = Tensor<2>;
    type Output = Tensor<2>;

    fn trunk(&self, input: Tensor<2>) -> Tensor<2> {
        self.trunk_rows.set(self.trunk_rows.get() + input.dims()[0]);
        relu(self.model.hidden.forward(input))
    }

    fn head(&self, features: Tensor<2>, mc: &McContext) -> Tensor<2> {
        self.model
            .output
            .forward(self.model.dropout.forward(features, mc))
    }
}

/// The rows of `items` (`[N, 6]`) as a dataset, for the `predict_dataset` paths.
fn rows_dataset(items: &Tensor<2>) -> InMemDataset<Vec<f32>> {
    InMemDataset::new(
        values(items.clone())
            .chunks(6)
            .map(<[f32]>::to_vec)
            .collect(),
    )
}

/// Turns rows of [`rows_dataset`] back into a `[B, 6]` batch on `device`.
fn row_batcher(device: &Device) -> impl Fn(Vec<Vec<f32>>) -> Tensor<2> + Copy + '_ {
    move |batch: Vec<Vec<f32>>| {
        let count = batch.len();
        Tensor::<2>::from_data(TensorData::new(batch.concat(), [count, 6]), device)
    }
}

fn pool(items: usize, device: &Device) -> Tensor<2> {
    Tensor::random([items, 6], Distribution::Normal(0.0, 1.0), device)
}

#[test]
fn predictions_have_shape_n_c_t_and_are_probabilities() -> Result<()> {
    let _serial = crate::serial();
    let device = device();
    let model = Counted::new(0.5, &device)?;
    let probs = sampler(7).init()?.predict_batch(&model, pool(5, &device))?;
    assert_eq!(probs.dims(), [5, 4, 7]);
    let sums = values(probs.sum_dim(1));
    assert_close(&sums, &[1.0; 5 * 7], 1e-5);
    Ok(())
}

#[test]
fn iterations_differ_and_coincide_without_dropout() -> Result<()> {
    let _serial = crate::serial();
    let device = device();
    let (items, iterations) = (20, 8);
    let input = pool(items, &device);
    let sampler = sampler(iterations).init()?;

    let stochastic = values(sampler.predict_batch(&Counted::new(0.5, &device)?, input.clone())?);
    // [N, C, T]: the iterations of one item and class are contiguous. An input whose hidden
    // ReLUs are all dead (or whose few live units all happen to be dropped) gives equal
    // iterations by chance, so count the rows whose iterations vary: with 20 random inputs,
    // nearly all of them do.
    let varying = stochastic
        .chunks(iterations)
        .filter(|row| row.iter().any(|v| *v != row[0]))
        .count();
    let rows = stochastic.len() / iterations;
    assert!(
        varying * 2 > rows,
        "only {varying} of {rows} rows vary across iterations"
    );

    let deterministic = values(sampler.predict_batch(&Counted::new(0.0, &device)?, input)?);
    for chunk in deterministic.chunks(iterations) {
        assert!(chunk.iter().all(|v| *v == chunk[0]), "{chunk:?}");
    }
    Ok(())
}

#[test]
fn the_mean_of_mc_dropout_approaches_the_deterministic_linear_output() -> Result<()> {
    let _serial = crate::serial();
    /// `dropout → linear`: the expected output is the linear output of the input.
    #[derive(Module, Debug)]
    struct LinearModel {
        dropout: McDropout,
        linear: Linear,
    }
    impl StochasticModel for LinearModel {
        type Input = Tensor<2>;
        type Features = Tensor<2>;
        type Output = Tensor<2>;
        fn trunk(&self, input: Tensor<2>) -> Tensor<2> {
            input
        }
        fn head(&self, input: Tensor<2>, mc: &McContext) -> Tensor<2> {
            self.linear.forward(self.dropout.forward(input, mc))
        }
    }
    let device = device();
    let model = LinearModel {
        dropout: McDropoutConfig::new(0.3).init()?,
        linear: LinearConfig::new(10, 2).init(&device),
    };
    let input = Tensor::<2>::ones([2, 10], &device);
    let sampler = sampler(4000)
        .with_activation(OutputActivation::Identity)
        .init()?;
    let outputs = sampler.predict_batch(&model, input.clone())?;
    let mean = values(outputs.mean_dim(2));
    let expected = values(model.linear.forward(input));
    let scale = expected
        .iter()
        .fold(0.0_f32, |m, v| m.max(v.abs()))
        .max(0.1);
    assert_close(&mean, &expected, 0.03 * scale.max(1.0));
    Ok(())
}

#[test]
fn observed_drop_rate_is_p() -> Result<()> {
    let _serial = crate::serial();
    /// Returns the dropped input itself, one "class" per feature.
    struct Identity(McDropout);
    impl StochasticModel for Identity {
        type Input = Tensor<2>;
        type Features = Tensor<2>;
        type Output = Tensor<2>;
        fn trunk(&self, input: Tensor<2>) -> Tensor<2> {
            input
        }
        fn head(&self, input: Tensor<2>, mc: &McContext) -> Tensor<2> {
            self.0.forward(input, mc)
        }
    }
    let device = device();
    let model = Identity(McDropoutConfig::new(0.2).init()?);
    let outputs = sampler(50)
        .with_activation(OutputActivation::Identity)
        .init()?
        .predict_batch(&model, Tensor::ones([20, 50], &device))?;
    let outputs = values(outputs);
    let dropped = outputs.iter().filter(|v| **v == 0.0).count() as f64 / outputs.len() as f64;
    assert!((dropped - 0.2).abs() < 0.01, "drop rate {dropped}");
    Ok(())
}

#[test]
fn same_seed_same_predictions_whatever_the_replication_and_batching() -> Result<()> {
    let _serial = crate::serial();
    let device = device();
    let model = Counted::new(0.5, &device)?;
    let items = pool(9, &device);
    let reference = values(
        sampler(6)
            .with_seed(42)
            .init()?
            .predict_batch(&model, items.clone())?,
    );

    // One iteration per pass.
    let iterating = sampler(6)
        .with_seed(42)
        .with_replicate_in_memory(false)
        .init()?;
    assert_close(
        &values(iterating.predict_batch(&model, items.clone())?),
        &reference,
        1e-6,
    );
    // A budget that fits two replicas: passes of 2, 2, 2.
    let budget = 9 * model.head_bytes_per_item(&model.trunk(items.clone())) * 2;
    let chunked = sampler(6).with_seed(42).with_memory_budget(budget).init()?;
    assert_eq!(chunked.replicas_per_pass(9, budget / 18), 2);
    assert_close(
        &values(chunked.predict_batch(&model, items.clone())?),
        &reference,
        1e-6,
    );

    // Another seed, other masks.
    let other = values(
        sampler(6)
            .with_seed(43)
            .init()?
            .predict_batch(&model, items)?,
    );
    assert_ne!(other, reference);
    Ok(())
}

#[test]
fn trunk_caching_runs_the_trunk_once_per_input_and_changes_nothing() -> Result<()> {
    let _serial = crate::serial();
    let device = device();
    let model = Counted::new(0.5, &device)?;
    let items = pool(8, &device);

    let cached = sampler(5).init()?.predict_batch(&model, items.clone())?;
    assert_eq!(model.trunk_rows.get(), 8, "the trunk ran once per input");

    model.trunk_rows.set(0);
    let uncached = sampler(5)
        .with_cache_trunk(false)
        .init()?
        .predict_batch(&model, items)?;
    // 5 replicas of 8 items, plus the one-item probe that sizes the passes.
    assert_eq!(model.trunk_rows.get(), 5 * 8 + 1);
    assert_close(&values(cached), &values(uncached), 1e-5);
    Ok(())
}

#[test]
fn consistent_dropout_gives_an_item_the_same_samples_alone_or_in_any_batch() -> Result<()> {
    let _serial = crate::serial();
    struct Consistent {
        dropout: ConsistentMcDropout,
        linear: Linear,
    }
    impl StochasticModel for Consistent {
        type Input = Tensor<2>;
        type Features = Tensor<2>;
        type Output = Tensor<2>;
        fn trunk(&self, input: Tensor<2>) -> Tensor<2> {
            input
        }
        fn head(&self, input: Tensor<2>, mc: &McContext) -> Tensor<2> {
            self.linear.forward(self.dropout.forward(input, mc))
        }
    }
    let device = device();
    let model = Consistent {
        dropout: ConsistentMcDropoutConfig::new(0.5).init()?,
        linear: LinearConfig::new(6, 3).init(&device),
    };
    let items = pool(7, &device);
    let sampler = sampler(4).init()?;
    let whole = values(sampler.predict_batch(&model, items.clone())?);
    let per_item = 3 * 4;
    for item in [0, 3, 6] {
        // Alone, at pool position 0 (consistent masks do not depend on the item).
        let alone = values(sampler.predict_batch(&model, items.clone().narrow(0, item, 1))?);
        assert_close(&alone, &whole[item * per_item..(item + 1) * per_item], 1e-5);
    }
    // In another batch layout.
    let dataset = rows_dataset(&items);
    let batcher = row_batcher(&device);
    for batch_size in [1, 3, 5] {
        let batched = values(sampler.predict_dataset(&model, &dataset, batch_size, batcher)?);
        assert_close(&batched, &whole, 1e-5);
    }
    Ok(())
}

#[test]
fn consistent_samples_make_iteration_t_one_network_for_every_item() -> Result<()> {
    let _serial = crate::serial();
    // The per-item `McDropout` of `Counted`, sampled consistently: a copy of an item gets the
    // very same samples, wherever it sits, in any batch, replication or trunk caching.
    let device = device();
    let model = Counted::new(0.5, &device)?;
    let base = pool(5, &device);
    // Every item twice: positions i and i + 5.
    let doubled = Tensor::cat(vec![base.clone(), base.clone()], 0);
    let per_item = 4 * 6;
    let consistent = sampler(6).with_seed(3).with_consistent(true);
    let whole = values(
        consistent
            .clone()
            .init()?
            .predict_batch(&model, doubled.clone())?,
    );
    for item in 0..5 {
        // The two copies of the item get the same networks.
        assert_close(
            &whole[item * per_item..(item + 1) * per_item],
            &whole[(item + 5) * per_item..(item + 6) * per_item],
            1e-6,
        );
    }
    // The same networks whatever the layout of the passes.
    let dataset = rows_dataset(&doubled);
    let batcher = row_batcher(&device);
    let budget = model.head_bytes_per_item(&model.trunk(base.clone())) * 3 * 2;
    for config in [
        consistent.clone().with_replicate_in_memory(false),
        consistent.clone().with_cache_trunk(false),
        consistent.clone().with_memory_budget(budget),
    ] {
        for batch_size in [1, 3, 10] {
            let batched = values(
                config
                    .init()?
                    .predict_dataset(&model, &dataset, batch_size, batcher)?,
            );
            assert_close(&batched, &whole, 1e-5);
        }
    }
    // A target set predicted on its own shares the pool's networks.
    let alone = values(
        consistent
            .init()?
            .predict_batch(&model, base.narrow(0, 2, 1))?,
    );
    assert_close(&alone, &whole[2 * per_item..3 * per_item], 1e-5);

    // Per-item samples (the default) give the copies different masks.
    let independent = values(
        sampler(6)
            .with_seed(3)
            .init()?
            .predict_batch(&model, doubled)?,
    );
    let copies_differ = (0..5).any(|item| {
        independent[item * per_item..(item + 1) * per_item]
            != independent[(item + 5) * per_item..(item + 6) * per_item]
    });
    assert!(copies_differ, "per-item masks should differ between copies");
    Ok(())
}

#[test]
fn dataset_predictions_match_batch_predictions_and_stream_in_chunks() -> Result<()> {
    let _serial = crate::serial();
    let device = device();
    let model = Counted::new(0.5, &device)?;
    let items = pool(10, &device);
    let dataset = rows_dataset(&items);
    let batcher = row_batcher(&device);
    let sampler = sampler(3).init()?;
    let whole = values(sampler.predict_batch(&model, items)?);
    // Per-item masks follow the dataset index, so batching changes nothing.
    let from_dataset = values(sampler.predict_dataset(&model, &dataset, 4, batcher)?);
    assert_close(&from_dataset, &whole, 1e-5);

    let mut ranges = Vec::new();
    sampler.predict_dataset_chunks(&model, &dataset, 4, batcher, |range, probs| {
        assert_eq!(probs.dims(), [range.len(), 4, 3]);
        ranges.push(range);
        Ok(())
    })?;
    assert_eq!(ranges, vec![0..4, 4..8, 8..10]);
    Ok(())
}

#[test]
fn a_view_keyed_by_dataset_indices_gets_each_items_samples_from_the_whole_dataset() -> Result<()> {
    let _serial = crate::serial();
    let device = device();
    let model = Counted::new(0.5, &device)?;
    let items = pool(12, &device);
    let batcher = row_batcher(&device);
    let sampler = sampler(5).init()?;
    let whole = values(sampler.predict_dataset(&model, &rows_dataset(&items), 5, batcher)?);
    // A view of items 9, 2, 7, 3 (an unlabelled pool, a shard): keyed by their dataset
    // indices, each gets the samples it has in the whole dataset.
    let picked = [9usize, 2, 7, 3];
    let rows = values(items.clone());
    let view = burn::data::dataset::InMemDataset::new(
        picked
            .iter()
            .map(|&i| rows[i * 6..(i + 1) * 6].to_vec())
            .collect::<Vec<_>>(),
    );
    let keyed = sampler
        .clone()
        .with_item_keys(Some(picked.to_vec().into()))
        .predict_dataset(&model, &view, 3, batcher)?;
    let keyed = values(keyed);
    let per_item = 4 * 5;
    for (row, &i) in picked.iter().enumerate() {
        assert_close(
            &keyed[row * per_item..(row + 1) * per_item],
            &whole[i * per_item..(i + 1) * per_item],
            1e-6,
        );
    }
    // Keyed by their positions in the view instead, they do not.
    let by_position = values(sampler.predict_dataset(&model, &view, 3, batcher)?);
    assert_ne!(by_position, keyed);
    // A key list of the wrong length is an error naming it.
    let error = sampler
        .with_item_keys(Some(vec![1, 2].into()))
        .predict_dataset(&model, &view, 3, batcher)
        .expect_err("refused");
    assert!(error.to_string().contains("item keys"), "{error}");
    Ok(())
}

#[test]
fn a_deterministic_sampler_turns_every_mc_layer_off() -> Result<()> {
    let _serial = crate::serial();
    // MC dropout at p = 0.5, off, equals the same weights with p = 0.
    let device = device();
    let input = pool(9, &device);
    let dropped = Counted::new(0.5, &device)?;
    let kept = Counted {
        model: Mlp {
            dropout: McDropoutConfig::new(0.0).init()?,
            ..dropped.model.clone()
        },
        trunk_rows: Cell::new(0),
    };
    let sampler = sampler(6).with_seed(3).init()?;
    let off = sampler.deterministic();
    assert_eq!(off.iterations(), 1);
    assert!(!off.config().stochastic && sampler.config().stochastic);
    let once = off.predict_batch(&dropped, input.clone())?;
    assert_eq!(once.dims(), [9, 4, 1]);
    let reference = off.predict_batch(&kept, input.clone())?;
    assert_close(&values(once.clone()), &values(reference), 0.0);
    // The stochastic sampler on the same model does drop.
    let on = values(
        sampler
            .predict_batch(&dropped, input.clone())?
            .narrow(2, 0, 1),
    );
    assert_ne!(on, values(once.clone()));
    // DropConnect, as a layer and as the generic wrapper, is off too.
    struct Connected(DropConnectLinear);
    impl StochasticModel for Connected {
        type Input = Tensor<2>;
        type Features = Tensor<2>;
        type Output = Tensor<2>;
        fn trunk(&self, input: Tensor<2>) -> Tensor<2> {
            input
        }
        fn head(&self, input: Tensor<2>, mc: &McContext) -> Tensor<2> {
            self.0.forward(input, mc)
        }
    }
    let connected =
        Connected(DropConnectLinearConfig::new(LinearConfig::new(6, 4), 0.5).init(&device)?);
    let plain = burn::tensor::activation::softmax(connected.0.linear.forward(input.clone()), 1);
    let off_connected = off.predict_batch(&connected, input.clone())?;
    assert_close(
        &values(off_connected.squeeze_dim::<2>(2)),
        &values(plain),
        1e-6,
    );
    let wrapped = McDropConnectConfig::new(0.5)
        .init(kept.model.clone())?
        .with_forward(|mlp: &Mlp, input: Tensor<2>| {
            mlp.output.forward(relu(mlp.hidden.forward(input)))
        });
    let wrapped_off = off.predict_batch(&wrapped, input)?;
    assert_close(&values(wrapped_off), &values(once), 1e-6);
    Ok(())
}

#[test]
fn drop_connect_replicas_of_one_input_differ_in_one_replicated_pass() -> Result<()> {
    let _serial = crate::serial();
    struct Connected(DropConnectLinear);
    impl StochasticModel for Connected {
        type Input = Tensor<2>;
        type Features = Tensor<2>;
        type Output = Tensor<2>;
        fn trunk(&self, input: Tensor<2>) -> Tensor<2> {
            input
        }
        fn head(&self, input: Tensor<2>, mc: &McContext) -> Tensor<2> {
            assert_eq!(mc.replicas(), 8, "all iterations in one pass");
            self.0.forward(input, mc)
        }
    }
    let device = device();
    let model =
        Connected(DropConnectLinearConfig::new(LinearConfig::new(12, 3), 0.5).init(&device)?);
    let probs = sampler(8)
        .init()?
        .predict_batch(&model, pool(1, &device).narrow(1, 0, 6).repeat_dim(1, 2))?;
    let samples = values(probs.narrow(1, 0, 1)); // class 0 over 8 iterations
    for a in 0..8 {
        for b in a + 1..8 {
            assert_ne!(samples[a], samples[b], "iterations {a} and {b}");
        }
    }
    Ok(())
}

#[test]
fn the_generic_drop_connect_wrapper_plugs_into_the_sampler() -> Result<()> {
    let _serial = crate::serial();
    let device = device();
    let mlp = Mlp {
        hidden: LinearConfig::new(6, 16).init(&device),
        dropout: McDropoutConfig::new(0.0).init()?,
        output: LinearConfig::new(16, 4).init(&device),
    };
    let model =
        McDropConnectConfig::new(0.3)
            .init(mlp)?
            .with_forward(|mlp: &Mlp, input: Tensor<2>| {
                mlp.output.forward(relu(mlp.hidden.forward(input)))
            });
    let items = pool(3, &device);
    let replicated = sampler(6).init()?.predict_batch(&model, items.clone())?;
    assert_eq!(replicated.dims(), [3, 4, 6]);
    let iterating = sampler(6)
        .with_replicate_in_memory(false)
        .init()?
        .predict_batch(&model, items)?;
    let replicated = values(replicated);
    assert_close(&replicated, &values(iterating), 1e-5);
    assert!(replicated[0..6].windows(2).all(|pair| pair[0] != pair[1]));
    Ok(())
}

#[test]
fn segmentation_outputs_give_n_c_p_t() -> Result<()> {
    let _serial = crate::serial();
    /// `[B, C, P]` logits: a per-position linear map after channel dropout.
    struct Segmenter(McDropout);
    impl StochasticModel for Segmenter {
        type Input = Tensor<3>;
        type Features = Tensor<3>;
        type Output = Tensor<3>;
        fn trunk(&self, input: Tensor<3>) -> Tensor<3> {
            input
        }
        fn head(&self, input: Tensor<3>, mc: &McContext) -> Tensor<3> {
            self.0.forward(input, mc)
        }
    }
    let device = device();
    let model = Segmenter(McDropoutConfig::new(0.5).init()?);
    let input = Tensor::<3>::random([2, 3, 5], Distribution::Default, &device);
    let probs = sampler(4).init()?.predict_batch(&model, input)?;
    assert_eq!(probs.dims(), [2, 3, 5, 4]);
    assert_close(&values(probs.sum_dim(1)), &[1.0; 2 * 5 * 4], 1e-5);
    Ok(())
}

#[test]
fn bad_configs_and_inputs_are_errors_not_panics() -> Result<()> {
    let _serial = crate::serial();
    let device = device();
    assert!(matches!(
        sampler(0).init(),
        Err(BayesianError::InvalidConfig { .. })
    ));
    assert!(sampler(3).with_memory_budget(0).init().is_err());
    assert!(matches!(
        McDropoutConfig::new(1.0).init(),
        Err(BayesianError::InvalidProbability { .. })
    ));
    assert!(McDropoutConfig::new(-0.1).init().is_err());

    let model = Counted::new(0.5, &device)?;
    let sampler = sampler(3).init()?;
    assert!(matches!(
        sampler.predict_batch(&model, Tensor::<2>::zeros([0, 6], &device)),
        Err(BayesianError::EmptyBatch { .. })
    ));
    let dataset = InMemDataset::new(vec![vec![0.0_f32; 6]; 4]);
    let batcher = |batch: Vec<Vec<f32>>| {
        let count = batch.len();
        Tensor::<2>::from_data(TensorData::new(batch.concat(), [count, 6]), &device)
    };
    assert!(
        sampler
            .predict_dataset(&model, &dataset, 0, batcher)
            .is_err()
    );
    let empty = InMemDataset::<Vec<f32>>::new(Vec::new());
    assert!(sampler.predict_dataset(&model, &empty, 2, batcher).is_err());
    // A batcher that loses an item.
    let lossy = |batch: Vec<Vec<f32>>| batcher(batch[1..].to_vec());
    assert!(matches!(
        sampler.predict_dataset(&model, &dataset, 2, lossy),
        Err(BayesianError::ShapeMismatch { .. })
    ));

    /// A head that drops the replica rows, before or after its dropout.
    struct Collapsing {
        dropout: McDropout,
        before_dropout: bool,
    }
    impl StochasticModel for Collapsing {
        type Input = Tensor<2>;
        type Features = Tensor<2>;
        type Output = Tensor<2>;
        fn trunk(&self, input: Tensor<2>) -> Tensor<2> {
            input
        }
        fn head(&self, input: Tensor<2>, mc: &McContext) -> Tensor<2> {
            if self.before_dropout {
                self.dropout.forward(input.narrow(0, 0, 1), mc)
            } else {
                self.dropout.forward(input, mc).narrow(0, 0, 1)
            }
        }
    }
    for before_dropout in [false, true] {
        let model = Collapsing {
            dropout: McDropoutConfig::new(0.5).init()?,
            before_dropout,
        };
        // Before the dropout layer this was a panic inside the layer; now the layer passes
        // the rows through and the sampler returns the layer's error.
        match sampler.predict_batch(&model, Tensor::<2>::ones([4, 2], &device)) {
            Err(BayesianError::ShapeMismatch { what, got, .. }) => {
                let expected = if before_dropout {
                    "McDropout"
                } else {
                    "StochasticModel::head output"
                };
                assert_eq!(what, expected);
                assert_eq!(got[0], 1);
            }
            other => panic!("expected a shape mismatch, got {other:?}"),
        }
    }
    Ok(())
}

#[test]
fn a_model_without_stochastic_layers_is_refused() {
    let _serial = crate::serial();
    /// A deterministic head: every MC sample would be the same.
    struct Deterministic;
    impl StochasticModel for Deterministic {
        type Input = Tensor<2>;
        type Features = Tensor<2>;
        type Output = Tensor<2>;
        fn trunk(&self, input: Tensor<2>) -> Tensor<2> {
            input
        }
        fn head(&self, input: Tensor<2>, _mc: &McContext) -> Tensor<2> {
            input * 2.0
        }
    }
    let device = device();
    let sampler = sampler(5).init().expect("valid sampler");
    let result = sampler.predict_batch(&Deterministic, Tensor::<2>::ones([3, 4], &device));
    assert!(
        matches!(result, Err(BayesianError::NoStochasticLayer)),
        "{:?}",
        result.map(|p| p.dims())
    );
}

/// The tests run on the backend the runner asked for (`BURN_DEVICE`, `BAAL_TEST_DEVICE`), not
/// silently on the CPU default.
#[test]
fn tests_run_on_the_requested_backend() {
    let _serial = crate::serial();
    let wanted = match std::env::var("BAAL_TEST_DEVICE") {
        Ok(name) => name,
        Err(_) => std::env::var("BURN_DEVICE").unwrap_or_else(|_| "flex".into()),
    };
    let marker = match wanted.to_lowercase().as_str() {
        "tch-cuda" => "LibTorch(Cuda",
        "tch" | "tch-cpu" => "LibTorch(Cpu",
        "cuda" => "Cuda",
        "wgpu" | "vulkan" | "metal" => "Wgpu",
        _ => "Flex",
    };
    let debug = format!("{:?}", device());
    // Without BURN_DEVICE the default is the first compiled backend, which may not be flex.
    if std::env::var("BURN_DEVICE").is_ok() {
        assert!(
            debug.contains(marker),
            "wanted {wanted}, running on {debug}"
        );
    }
    // Whatever the backend, a tensor made there stays there.
    let tensor = Tensor::<1>::zeros([2], &device());
    assert_eq!(format!("{:?}", tensor.device()), debug);
}
