//! Values, invariants and errors of the heuristics, through the public API.
#![allow(clippy::needless_range_loop)] // index loops mirror the formulas

use crate::common;

use crate::common::*;
use baal_heuristics::{
    Bald, BatchBald, Certainty, CombineHeuristics, Entropy, Epig, Heuristic, HeuristicError,
    Margin, Orientation, Precomputed, Predictions, Random, Reduction, SamplingRule,
    StochasticSampling, Variance, VariationRatio,
};
use burn::tensor::{Tensor, TensorData};

fn scores(h: &dyn Heuristic, preds: &Predictions) -> Vec<f32> {
    h.scores(preds, None).expect("scores")
}

#[test]
fn hand_computed_values_on_a_tiny_pool() {
    // Item 0: samples agree on a uniform prediction. Item 1: confident samples that disagree.
    // Item 2: confident and agreeing. Item 3: [0.7, 0.2, 0.1] then [0.5, 0.4, 0.1].
    let pool = vec![
        vec![vec![1.0 / 3.0; 2]; 3],
        vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.0, 0.0]],
        vec![vec![1.0, 1.0], vec![0.0, 0.0], vec![0.0, 0.0]],
        vec![vec![0.7, 0.5], vec![0.2, 0.4], vec![0.1, 0.1]],
    ];
    let preds = predictions(&pool);
    let ln = f64::ln;
    let h3 = |a: f64, b: f64, c: f64| -(a * ln(a) + b * ln(b) + c * ln(c));

    let bald = scores(&Bald, &preds);
    let expected_bald = [
        0.0,
        ln(2.0),
        0.0,
        h3(0.6, 0.3, 0.1) - (h3(0.7, 0.2, 0.1) + h3(0.5, 0.4, 0.1)) / 2.0,
    ];
    let entropy = scores(&Entropy, &preds);
    let expected_entropy = [ln(3.0), ln(2.0), 0.0, h3(0.6, 0.3, 0.1)];
    let margin = scores(&Margin, &preds);
    let expected_margin = [0.0, 0.0, 1.0, 0.3];
    let certainty = scores(&Certainty, &preds);
    let expected_certainty = [1.0 / 3.0, 0.5, 1.0, 0.6];
    let variance = scores(&Variance, &preds);
    // var over T of 2 values a, b is ((a-b)/2)^2; mean over the 3 classes.
    let expected_variance = [
        0.0,
        (0.25 + 0.25 + 0.0) / 3.0,
        0.0,
        (0.01 + 0.01 + 0.0) / 3.0,
    ];
    for (name, got, want) in [
        ("bald", &bald, expected_bald),
        ("entropy", &entropy, expected_entropy),
        ("margin", &margin, expected_margin),
        ("certainty", &certainty, expected_certainty),
        ("variance", &variance, expected_variance),
    ] {
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            assert_close(f64::from(g), w, 1e-5, &format!("{name} of item {i}"));
        }
    }
    // Orientation: margin and certainty rank their lowest scores first.
    assert_eq!(Margin.rank(&preds, None).expect("rank").top(2), &[0, 1]);
    assert_eq!(
        Certainty.rank(&preds, None).expect("rank").positions()[0],
        0
    );
    assert_eq!(Bald.rank(&preds, None).expect("rank").positions()[0], 1);
    assert_eq!(Entropy.rank(&preds, None).expect("rank").positions()[0], 0);
}

#[test]
fn invariants_on_random_predictions() {
    let (n, c, t) = (300, 7, 12);
    let pool = random_probs(n, c, t, 3.0, 11);
    let preds = predictions(&pool);
    let bald = scores(&Bald, &preds);
    let entropy = scores(&Entropy, &preds);
    let ln_c = (c as f32).ln();
    for i in 0..n {
        assert!(bald[i] >= -1e-5, "BALD {} of item {i} is negative", bald[i]);
        assert!(bald[i] <= entropy[i] + 1e-5, "BALD exceeds entropy at {i}");
        assert!(entropy[i] <= ln_c + 1e-5, "entropy exceeds ln C at {i}");
        assert_close(
            f64::from(bald[i]),
            reference_bald(&pool[i]),
            1e-4,
            "BALD vs reference",
        );
        assert_close(
            f64::from(entropy[i]),
            entropy_of(&mean_over_t(&pool[i])),
            1e-4,
            "entropy vs reference",
        );
    }
}

fn entropy_of(p: &[f64]) -> f64 {
    common::entropy(p)
}

#[test]
fn one_hot_has_zero_bald_and_uniform_has_maximal_entropy() {
    let c = 5;
    let one_hot: Vec<Vec<Vec<f64>>> = (0..c)
        .map(|k| {
            (0..c)
                .map(|j| vec![if j == k { 1.0 } else { 0.0 }; 4])
                .collect()
        })
        .collect();
    for b in scores(&Bald, &predictions(&one_hot)) {
        assert!(
            b.abs() < 1e-6,
            "BALD of agreeing one-hot predictions is {b}"
        );
    }
    let uniform = vec![vec![vec![1.0 / c as f64; 4]; c]; 3];
    for e in scores(&Entropy, &predictions(&uniform)) {
        assert_close(f64::from(e), (c as f64).ln(), 1e-6, "entropy of uniform");
    }
}

#[test]
fn chunking_does_not_change_scores() {
    let pool = random_probs(257, 4, 6, 2.0, 3);
    let preds = predictions(&pool);
    let small = preds.clone().with_memory_budget(1000);
    for h in [
        &Bald as &dyn Heuristic,
        &Entropy,
        &Margin,
        &Certainty,
        &Variance,
    ] {
        let a = scores(h, &preds);
        let b = scores(h, &small);
        for (x, y) in a.iter().zip(&b) {
            assert_close(f64::from(*x), f64::from(*y), 1e-6, h.name());
        }
    }
}

#[test]
fn logits_are_softmaxed_over_classes() {
    let logits = Tensor::<3>::from_floats([[[0.0, 2.0], [0.0, 0.0]]], &device());
    let preds = Predictions::from_logits(logits).expect("finite logits");
    let e = 2f64.exp();
    let expected = entropy_of(&[(0.5 + e / (1.0 + e)) / 2.0, (0.5 + 1.0 / (1.0 + e)) / 2.0]);
    assert_close(
        f64::from(scores(&Entropy, &preds)[0]),
        expected,
        1e-5,
        "entropy of softmax",
    );
}

#[test]
fn segmentation_scores_fold_positions_with_the_reduction() {
    // 2 items, 2 classes, 3 positions, 2 iterations.
    let pool = random_probs(6, 2, 2, 2.0, 5);
    // Lay out [N=2, C=2, P=3, T=2] from 6 per-position predictions.
    let mut flat = Vec::new();
    for item in 0..2 {
        for class in 0..2 {
            for position in 0..3 {
                flat.extend(pool[item * 3 + position][class].iter().map(|&v| v as f32));
            }
        }
    }
    let values = || Tensor::<4>::from_data(TensorData::new(flat.clone(), [2, 2, 3, 2]), &device());
    let per_position: Vec<f64> = pool.iter().map(|p| reference_bald(p)).collect();
    for (reduction, fold) in [
        (
            Reduction::Mean,
            (|v: &[f64]| v.iter().sum::<f64>() / 3.0) as fn(&[f64]) -> f64,
        ),
        (Reduction::Sum, |v: &[f64]| v.iter().sum::<f64>()),
        (Reduction::Max, |v: &[f64]| {
            v.iter().copied().fold(f64::MIN, f64::max)
        }),
        (Reduction::Min, |v: &[f64]| {
            v.iter().copied().fold(f64::MAX, f64::min)
        }),
    ] {
        let preds = Predictions::from_segmentation_probs(values(), reduction).expect("valid");
        let got = scores(&Bald, &preds);
        for item in 0..2 {
            let want = fold(&per_position[item * 3..item * 3 + 3]);
            assert_close(
                f64::from(got[item]),
                want,
                1e-5,
                &format!("{reduction:?} BALD"),
            );
        }
    }
    let err = Predictions::from_segmentation_probs(values(), Reduction::None).expect_err("P > 1");
    assert!(matches!(
        err,
        HeuristicError::InvalidParameter {
            name: "reduction",
            ..
        }
    ));
    let preds = Predictions::from_segmentation_probs(values(), Reduction::Mean).expect("valid");
    assert!(matches!(
        BatchBald::new(1).select(&preds, None, 1),
        Err(HeuristicError::PositionsUnsupported { positions: 3, .. })
    ));
}

#[test]
fn regression_outputs_work_with_variance_only() {
    let outputs = Tensor::<3>::from_floats([[[1.0, 3.0]], [[5.0, 5.0]]], &device());
    let preds = Predictions::from_regression(outputs).expect("finite");
    assert_eq!(scores(&Variance, &preds), vec![1.0, 0.0]);
    assert!(matches!(
        Bald.scores(&preds, None),
        Err(HeuristicError::NeedsProbabilities { heuristic: "bald" })
    ));
}

fn invalid(values: Vec<f32>, shape: [usize; 3]) -> HeuristicError {
    let t = Tensor::<3>::from_data(TensorData::new(values, shape), &device());
    Predictions::from_probs(t).expect_err("invalid predictions")
}

#[test]
fn bad_predictions_name_the_first_offending_item() {
    // [N=3, C=2, T=1]
    let err = invalid(vec![0.5, 0.5, 0.5, f32::NAN, 0.5, 0.5], [3, 2, 1]);
    assert!(
        matches!(err, HeuristicError::NonFinite { item: 1 }),
        "{err}"
    );
    let err = invalid(vec![0.5, 0.5, 0.5, 0.5, 1.5, -0.5], [3, 2, 1]);
    assert!(
        matches!(
            err,
            HeuristicError::ProbabilityOutOfRange {
                item: 2,
                class: 0,
                ..
            }
        ),
        "{err}"
    );
    let err = invalid(vec![0.5, 0.5, 0.5, 0.5, 0.2, 0.2], [3, 2, 1]);
    assert!(
        matches!(err, HeuristicError::NotNormalised { item: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("item 2"), "{err}");
    // Within the 1e-3 tolerance is accepted.
    let t = Tensor::<3>::from_data(TensorData::new(vec![0.5f32, 0.5005], [1, 2, 1]), &device());
    assert!(Predictions::from_probs(t).is_ok());
    let err = invalid(vec![], [0, 2, 1]);
    assert!(matches!(err, HeuristicError::ShapeMismatch { .. }), "{err}");
    let t = Tensor::<3>::from_data(
        TensorData::new(vec![f32::INFINITY, 0.0], [1, 2, 1]),
        &device(),
    );
    assert!(matches!(
        Predictions::from_logits(t),
        Err(HeuristicError::NonFinite { item: 0 })
    ));
}

#[test]
fn query_sizes_are_checked() {
    let preds = predictions(&random_probs(5, 3, 4, 1.0, 1));
    assert!(matches!(
        Bald.select(&preds, None, 6),
        Err(HeuristicError::QueryTooLarge {
            requested: 6,
            available: 5
        })
    ));
    assert!(Bald.select(&preds, None, 0).is_err());
    assert!(BatchBald::new(6).select(&preds, None, 6).is_err());
}

#[test]
fn batch_bald_of_one_is_balds_argmax() {
    for seed in 0..4 {
        let preds = predictions(&random_probs(200, 10, 20, 3.0, seed));
        let bald = Bald.rank(&preds, None).expect("rank");
        let selection = BatchBald::new(1).select(&preds, None, 1).expect("select");
        assert_eq!(selection.positions, vec![bald.positions()[0]]);
        assert_close(
            f64::from(selection.scores[0]),
            f64::from(bald.scores()[bald.positions()[0]]),
            1e-6,
            "first pick's score",
        );
    }
}

#[test]
fn batch_bald_exact_matches_brute_force_greedy() {
    let (n, c, t, k) = (12, 3, 5, 4);
    let pool = random_probs(n, c, t, 3.0, 21);
    let preds = predictions(&pool);
    let selection = BatchBald::new(k)
        .with_max_exact_configurations(10_000)
        .select(&preds, None, k)
        .expect("select");
    // Brute-force greedy over exact joint mutual information.
    let mut picked: Vec<usize> = Vec::new();
    for step in 0..k {
        let (best, best_mi) = (0..n)
            .filter(|i| !picked.contains(i))
            .map(|i| {
                let mut batch: Vec<&Vec<Vec<f64>>> = picked.iter().map(|&j| &pool[j]).collect();
                batch.push(&pool[i]);
                (i, reference_batch_mi(&batch))
            })
            .fold((usize::MAX, f64::MIN), |a, b| if b.1 > a.1 { b } else { a });
        assert_eq!(selection.positions[step], best, "pick {step}");
        assert_close(f64::from(selection.scores[step]), best_mi, 1e-4, "batch MI");
        picked.push(best);
    }
    // Picks are distinct and the batch information never decreases.
    assert!(selection.scores.windows(2).all(|w| w[1] >= w[0] - 1e-6));
}

#[test]
fn batch_bald_sampled_joint_entropy_agrees_with_exact() {
    let (n, c, t, k) = (40, 3, 8, 4);
    let pool = random_probs(n, c, t, 2.5, 8);
    let preds = predictions(&pool);
    let exact = BatchBald::new(k).select(&preds, None, k).expect("exact");
    let sampled = BatchBald::new(k)
        .with_max_exact_configurations(0)
        .with_num_samples(20_000)
        .with_seed(3)
        .select(&preds, None, k)
        .expect("sampled");
    // The sampled estimate of each pick's batch information is close to the exact one.
    for step in 0..k {
        let batch: Vec<&Vec<Vec<f64>>> = sampled.positions[..=step]
            .iter()
            .map(|&i| &pool[i])
            .collect();
        assert_close(
            f64::from(sampled.scores[step]),
            reference_batch_mi(&batch),
            0.03,
            &format!("sampled batch MI at pick {step}"),
        );
    }
    assert_eq!(exact.positions[..2], sampled.positions[..2]);
}

#[test]
fn batch_bald_is_deterministic_for_a_seed_and_avoids_duplicates() {
    // Item 1 duplicates item 0: BALD would take both, BatchBALD takes only one of them.
    let mut pool = random_probs(30, 4, 10, 3.0, 2);
    pool[1] = pool[0].clone();
    let best = Bald
        .rank(&predictions(&pool), None)
        .expect("rank")
        .positions()[0];
    pool.swap(0, best);
    pool[1] = pool[0].clone();
    let preds = predictions(&pool);
    let bald_top = Bald.rank(&preds, None).expect("rank");
    assert_eq!(
        bald_top
            .top(2)
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        [0, 1].into()
    );
    let config = BatchBald::new(6)
        .with_max_exact_configurations(0)
        .with_num_samples(300)
        .with_seed(9);
    // The same seed and draw counter give the same batch; each selection draws from the
    // next stream of the seed.
    let replay = config.clone();
    let for_rank = config.clone();
    let a = config.select(&preds, None, 6).expect("select");
    assert_eq!(config.draws(), 1);
    assert_eq!(a, replay.select(&preds, None, 6).expect("select"));
    assert!(
        !(a.positions.contains(&0) && a.positions.contains(&1)),
        "{a:?}"
    );
    let ranking = for_rank.rank(&preds, None).expect("rank");
    assert_eq!(ranking.top(6), a.positions.as_slice());
    assert_eq!(ranking.len(), 30);
}

#[test]
fn epig_matches_a_host_reference() {
    let (c, t) = (3, 6);
    let pool = random_probs(9, c, t, 2.0, 4);
    let target = random_probs(5, c, t, 2.0, 40);
    let scores = Epig
        .scores(&predictions(&pool), Some(&predictions(&target)))
        .expect("epig");
    for (i, item) in pool.iter().enumerate() {
        let mut total = 0.0;
        for star in &target {
            let mut mi = 0.0;
            let (py, ps) = (mean_over_t(item), mean_over_t(star));
            for y in 0..c {
                for ys in 0..c {
                    let joint = (0..t).map(|it| item[y][it] * star[ys][it]).sum::<f64>() / t as f64;
                    if joint > 0.0 {
                        mi += joint * (joint / (py[y] * ps[ys])).ln();
                    }
                }
            }
            total += mi;
        }
        assert_close(
            f64::from(scores[i]),
            total / target.len() as f64,
            1e-5,
            "EPIG",
        );
        assert!(scores[i] >= -1e-6);
    }
    // Chunked within tiny budgets (pool items, then targets too): the same values.
    for budget in [100, 300, 1] {
        let small = predictions(&pool).with_memory_budget(budget);
        let chunked = Epig
            .scores(&small, Some(&predictions(&target)))
            .expect("epig");
        for (a, b) in scores.iter().zip(&chunked) {
            assert_close(f64::from(*a), f64::from(*b), 1e-6, "chunked EPIG");
        }
    }
}

#[test]
fn epig_needs_a_matching_target() {
    let preds = predictions(&random_probs(4, 3, 5, 1.0, 0));
    assert!(matches!(
        Epig.scores(&preds, None),
        Err(HeuristicError::MissingTarget { .. })
    ));
    let other = predictions(&random_probs(4, 2, 5, 1.0, 0));
    assert!(matches!(
        Epig.scores(&preds, Some(&other)),
        Err(HeuristicError::ShapeMismatch { .. })
    ));
}

#[test]
fn random_is_seeded_and_advances() {
    let preds = predictions(&random_probs(50, 2, 2, 1.0, 0));
    let a = Random::new(7);
    let b = Random::new(7);
    let first = a.rank(&preds, None).expect("rank");
    assert_eq!(first, b.rank(&preds, None).expect("rank"));
    let second = a.rank(&preds, None).expect("rank");
    assert_ne!(first.positions(), second.positions());
    assert_ne!(first, Random::new(8).rank(&preds, None).expect("rank"));
}

#[test]
fn precomputed_scores_rank_in_their_orientation() {
    let preds = predictions(&random_probs(3, 2, 2, 1.0, 0));
    let high =
        Precomputed::new(vec![0.1, 0.9, 0.5], Orientation::HigherIsMoreInformative).expect("ok");
    assert_eq!(
        high.rank(&preds, None).expect("rank").positions(),
        &[1, 2, 0]
    );
    let low =
        Precomputed::new(vec![0.1, 0.9, 0.5], Orientation::LowerIsMoreInformative).expect("ok");
    assert_eq!(low.ranking().expect("rank").positions(), &[0, 2, 1]);
    assert!(Precomputed::new(vec![f32::NAN], Orientation::LowerIsMoreInformative).is_err());
    let short = Precomputed::new(vec![0.1], Orientation::LowerIsMoreInformative).expect("ok");
    assert!(short.rank(&preds, None).is_err());
}

#[test]
fn combine_weights_and_orientations() {
    let pool = random_probs(20, 4, 6, 2.0, 12);
    let preds = predictions(&pool);
    let combined = CombineHeuristics::new(vec![Box::new(Bald), Box::new(Entropy)], vec![3.0, 1.0])
        .expect("same orientation");
    assert_eq!(combined.weights(), &[0.75, 0.25]);
    let got = scores(&combined, &preds);
    let (bald, entropy) = (scores(&Bald, &preds), scores(&Entropy, &preds));
    for i in 0..20 {
        let want = (0.75 * f64::from(bald[i]) + 0.25 * f64::from(entropy[i])) / 2.0;
        assert_close(f64::from(got[i]), want, 1e-6, "weighted mean");
    }
    let second = predictions(&random_probs(20, 4, 6, 2.0, 13));
    let outputs = combined
        .rank_outputs(&[&preds, &second])
        .expect("two outputs");
    assert_eq!(outputs.len(), 20);
    assert!(combined.rank_outputs(&[&preds]).is_err());
    assert!(
        CombineHeuristics::new(vec![Box::new(Bald), Box::new(Margin)], vec![1.0, 1.0]).is_err()
    );
    assert!(CombineHeuristics::new(vec![Box::new(Bald)], vec![-1.0]).is_err());
    assert!(CombineHeuristics::new(vec![Box::new(Bald)], vec![1.0, 1.0]).is_err());
}

#[test]
fn stochastic_sampling_is_seeded_and_follows_the_weights() {
    // Item 0 carries almost all the BALD mass, items 3.. have zero BALD.
    let mut pool = vec![vec![vec![1.0 / 3.0; 2]; 3]; 8];
    pool[0] = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![0.0, 0.0]];
    pool[1] = vec![vec![0.6, 0.4], vec![0.4, 0.6], vec![0.0, 0.0]];
    pool[2] = vec![vec![0.55, 0.45], vec![0.45, 0.55], vec![0.0, 0.0]];
    let preds = predictions(&pool);
    let power = StochasticSampling::power(Bald, 1.0, 5).expect("valid");
    let mut first_is_zero = 0;
    for _ in 0..200 {
        let ranking = power.rank(&preds, None).expect("rank");
        // Positive-weight items always come before zero-weight ones.
        let mut head: Vec<usize> = ranking.top(3).to_vec();
        head.sort_unstable();
        assert_eq!(head, vec![0, 1, 2]);
        first_is_zero += usize::from(ranking.positions()[0] == 0);
        let total: f32 = ranking.scores().iter().sum();
        assert_close(f64::from(total), 1.0, 1e-5, "probabilities sum to one");
    }
    // p(item 0 first) = BALD_0 / (BALD_0 + BALD_1 + BALD_2) ≈ 0.94.
    assert!(
        first_is_zero > 170,
        "item 0 first {first_is_zero} times of 200"
    );
    let again = StochasticSampling::power(Bald, 1.0, 5).expect("valid");
    assert_eq!(
        StochasticSampling::power(Bald, 1.0, 5)
            .expect("valid")
            .rank(&preds, None)
            .expect("rank"),
        again.rank(&preds, None).expect("rank")
    );
    for rule in [SamplingRule::Softmax, SamplingRule::Rank] {
        let s = StochasticSampling::new(Margin, rule, 0.5, 1).expect("valid");
        let selection = s.select(&preds, None, 4).expect("select");
        assert_eq!(selection.positions.len(), 4);
    }
    assert!(StochasticSampling::power(Margin, 1.0, 0).is_err());
    assert!(StochasticSampling::power(Bald, 0.0, 0).is_err());
    assert!(StochasticSampling::power(Bald, f64::NAN, 0).is_err());
}

#[test]
fn fused_cpu_kernels_match_the_tensor_path() {
    let pool = random_probs(120, 5, 9, 3.0, 77);
    let fused = predictions(&pool);
    // On flex (the test device without a GPU feature) the kernels are on by default.
    #[cfg(not(any(feature = "wgpu", feature = "cuda")))]
    assert!(fused.uses_host_kernels());
    let tensor = fused.clone().with_host_kernels(false).expect("read");
    assert!(!tensor.uses_host_kernels());
    for h in [&Bald as &dyn Heuristic, &Entropy] {
        let a = h.scores(&fused, None).expect("scores");
        let b = h.scores(&tensor, None).expect("scores");
        for (x, y) in a.iter().zip(&b) {
            assert_close(f64::from(*x), f64::from(*y), 2e-6, h.name());
        }
    }
    for max_exact in [1000, 0] {
        let config = BatchBald::new(5)
            .with_max_exact_configurations(max_exact)
            .with_num_samples(200);
        // Each selection draws from the next stream: compare two at the same counter.
        let a = config.clone().select(&fused, None, 5).expect("select");
        let b = config.select(&tensor, None, 5).expect("select");
        assert_eq!(a.positions, b.positions);
        for (x, y) in a.scores.iter().zip(&b.scores) {
            assert_close(f64::from(*x), f64::from(*y), 1e-4, "batch MI");
        }
    }
}

#[test]
fn a_selection_carries_every_pool_items_score() {
    // Before, a caller that wanted the pool's scores (the loop's mean uncertainty) scored the
    // pool a second time; `Selection::pool_scores` hands them over.
    let preds = predictions(&random_probs(40, 3, 8, 2.0, 5));
    let bald = scores(&Bald, &preds);
    let picked = Bald.select(&preds, None, 5).expect("select");
    assert_eq!(picked.pool_scores, bald);
    let batch = BatchBald::new(4).select(&preds, None, 4).expect("select");
    assert_eq!(
        batch.pool_scores, bald,
        "BatchBALD's per-item score is BALD"
    );
    let sampled = StochasticSampling::power(Bald, 1.0, 3).expect("valid");
    let selection = sampled.select(&preds, None, 5).expect("select");
    assert_eq!(
        selection.pool_scores, bald,
        "the base scores, not the probabilities"
    );
    assert_eq!(
        scores(&Entropy, &preds),
        Entropy.select(&preds, None, 3).expect("select").pool_scores
    );
}

#[test]
fn heuristics_that_read_no_predictions_select_without_them() {
    let preds = predictions(&random_probs(30, 2, 2, 1.0, 0));
    let with = Random::new(4).select(&preds, None, 7).expect("select");
    let without = Random::new(4)
        .select_without_predictions(30, 7)
        .expect("select");
    assert_eq!(with, without);
    let precomputed =
        Precomputed::new(vec![0.3, 0.9, 0.1], Orientation::HigherIsMoreInformative).expect("ok");
    let selection = precomputed
        .select_without_predictions(3, 2)
        .expect("select");
    assert_eq!(selection.positions, [1, 0]);
    assert!(matches!(
        precomputed.select_without_predictions(4, 2),
        Err(HeuristicError::ShapeMismatch { .. })
    ));
    // A heuristic that reads predictions says so rather than ranking garbage.
    let err = Bald
        .select_without_predictions(30, 3)
        .expect_err("needs predictions");
    assert!(
        matches!(err, HeuristicError::NeedsPredictions { heuristic: "bald" }),
        "{err}"
    );
    assert!(
        Random::new(1).select_without_predictions(3, 4).is_err(),
        "k > pool"
    );
}

#[test]
fn a_restored_draw_counter_continues_the_random_stream() {
    // A run resumed after two steps must draw what the original's third step drew: the
    // counter is the state, the seed alone is not.
    let preds = predictions(&random_probs(60, 3, 6, 2.0, 8));
    type Build = Box<dyn Fn() -> Box<dyn Heuristic>>;
    let builders: Vec<(&str, Build)> = vec![
        ("random", Box::new(|| Box::new(Random::new(5)))),
        (
            "power",
            Box::new(|| Box::new(StochasticSampling::power(Bald, 0.5, 5).expect("valid"))),
        ),
        (
            "batch-bald",
            Box::new(|| {
                Box::new(
                    BatchBald::new(4)
                        .with_max_exact_configurations(0)
                        .with_num_samples(50)
                        .with_seed(5),
                )
            }),
        ),
    ];
    for (name, build) in builders {
        let original = build();
        let mut picks = Vec::new();
        for _ in 0..3 {
            picks.push(original.select(&preds, None, 4).expect("select").positions);
        }
        assert_eq!(original.draws(), 3, "{name}");
        if name != "batch-bald" {
            assert_ne!(picks[1], picks[2], "{name}: successive draws differ");
        }
        let resumed = build();
        resumed.set_draws(2);
        let third = resumed.select(&preds, None, 4).expect("select").positions;
        assert_eq!(third, picks[2], "{name}");
    }
    assert_eq!(Bald.draws(), 0, "deterministic heuristics draw nothing");
}

#[test]
fn variation_ratio_counts_the_samples_against_the_modal_vote() {
    // Item 0: votes 0, 0, 1, 2 -> 1 - 2/4. Item 1: unanimous (sure or not) -> 0.
    // Item 2: two votes each for classes 0 and 1 -> 1 - 2/4.
    let item0 = vec![
        vec![0.7, 0.6, 0.2, 0.1],
        vec![0.2, 0.3, 0.5, 0.2],
        vec![0.1, 0.1, 0.3, 0.7],
    ];
    let item1 = vec![
        vec![0.4, 0.5, 0.9, 0.34],
        vec![0.3, 0.25, 0.05, 0.33],
        vec![0.3, 0.25, 0.05, 0.33],
    ];
    let item2 = vec![
        vec![0.6, 0.2, 0.7, 0.1],
        vec![0.3, 0.7, 0.2, 0.8],
        vec![0.1, 0.1, 0.1, 0.1],
    ];
    let preds = predictions(&[item0, item1, item2]);
    let vr = scores(&VariationRatio, &preds);
    for (got, want) in vr.iter().zip([0.5, 0.0, 0.5]) {
        assert_close(f64::from(*got), want, 1e-6, "variation ratio");
    }
    // Registered: reachable by name with its capabilities.
    let kind: baal_heuristics::HeuristicKind = "variation-ratio".parse().expect("registered");
    let built = kind
        .build(&baal_heuristics::HeuristicParams::new())
        .expect("builds");
    assert_eq!(built.scores(&preds, None).expect("scores"), vr);
    assert!(built.needs_predictions() && !built.needs_consistent_samples());
}
