//! BADGE (k-means++ on gradient embeddings): hand-worked embeddings and picks, the draw's
//! distribution, streaming, bad input.

use crate::common::*;
use baal_heuristics::{
    Badge, ClassProbabilities, EmbeddingInput, Embeddings, Heuristic, HeuristicError, Predictions,
    Selection,
};
use burn::tensor::{Tensor, TensorData};

fn features(values: &[f32], d: usize) -> Embeddings {
    Embeddings::new(values.to_vec(), [values.len() / d, d]).expect("valid")
}

fn probabilities(values: &[f32], c: usize) -> ClassProbabilities {
    ClassProbabilities::new(values.to_vec(), [values.len() / c, c]).expect("valid")
}

fn select(badge: &Badge, h: &Embeddings, p: &ClassProbabilities, k: usize) -> Selection {
    let input = EmbeddingInput::new(h).with_probabilities(p);
    badge.select_with_embeddings(&input, k).expect("select")
}

fn assert_close(actual: &[f32], expected: &[f32], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!((a - e).abs() < 1e-5, "{what}[{i}]: {a} vs {e}");
    }
}

#[test]
fn gradient_embeddings_by_hand_two_classes_two_features() {
    // Item 0: p = [0.7, 0.3], h = [1, 2]: ŷ = 0, a = p - onehot = [-0.3, 0.3],
    //         g = [a_0 h, a_1 h] = [-0.3, -0.6, 0.3, 0.6], ‖g‖² = 0.9.
    // Item 1: p = [0.4, 0.6], h = [3, -1]: ŷ = 1, a = [0.4, -0.4],
    //         g = [1.2, -0.4, -1.2, 0.4], ‖g‖² = 3.2.
    // Item 2: p = [0.5, 0.5] (a tie: ŷ = 0), h = [0, 0]: g = 0.
    let h = features(&[1.0, 2.0, 3.0, -1.0, 0.0, 0.0], 2);
    let p = probabilities(&[0.7, 0.3, 0.4, 0.6, 0.5, 0.5], 2);
    let g = Badge::new(0)
        .gradient_embeddings(&h, &p)
        .expect("embeddings");
    assert_eq!((g.len(), g.dim()), (3, 4));
    assert_close(g.row(0), &[-0.3, -0.6, 0.3, 0.6], "g0");
    assert_close(g.row(1), &[1.2, -0.4, -1.2, 0.4], "g1");
    assert_close(g.row(2), &[0.0; 4], "g2");
    // With the bias: h gets a constant 1, so each class block ends with a_c.
    let biased = Badge::new(0).with_bias(true);
    let g = biased.gradient_embeddings(&h, &p).expect("embeddings");
    assert_eq!(g.dim(), 6);
    assert_close(g.row(0), &[-0.3, -0.6, -0.3, 0.3, 0.6, 0.3], "biased g0");
    assert_close(g.row(2), &[0.0, 0.0, -0.5, 0.0, 0.0, 0.5], "biased g2");

    // The first pick is the largest ‖g‖: item 1. Its distance to item 0 is
    // ‖g0 - g1‖² = 1.5² + 0.2² + 1.5² + 0.2² = 4.58, to item 2 ‖g1‖² = 3.2: the second
    // pick is one of them, scored with its distance.
    let two = select(&Badge::new(3), &h, &p, 2);
    assert_eq!(two.positions[0], 1);
    assert_close(
        &two.pool_scores,
        &[0.9f32.sqrt(), 3.2f32.sqrt(), 0.0],
        "norms",
    );
    let expected_second = if two.positions[1] == 0 { 4.58f32 } else { 3.2 };
    assert_close(
        &two.scores,
        &[3.2f32.sqrt(), expected_second.sqrt()],
        "scores",
    );
    // With the bias, item 2's gradient is no longer zero: ‖g2‖² = 0.5 > 0, and
    // ‖g0‖² = 0.9 + 0.18, ‖g1‖² = 3.2 + 0.32.
    let one = select(&biased, &h, &p, 1);
    assert_close(
        &one.pool_scores,
        &[1.08f32.sqrt(), 3.52f32.sqrt(), 0.5f32.sqrt()],
        "biased norms",
    );
}

#[test]
fn first_pick_is_the_largest_gradient_ties_to_the_lowest_position() {
    // Items 1 and 2 are the same and have the largest gradient.
    let h = features(&[1.0, 0.0, 5.0, 5.0, 5.0, 5.0, 2.0, 2.0], 2);
    let p = probabilities(&[0.5, 0.5, 0.6, 0.4, 0.6, 0.4, 0.6, 0.4], 2);
    for seed in 0..5 {
        assert_eq!(select(&Badge::new(seed), &h, &p, 1).positions, vec![1]);
    }
}

#[test]
fn a_degenerate_distribution_gives_a_fixed_sequence_for_every_seed() {
    // Position 0: C, p = [0.9, 0.1], h = [0, 1]: a = [-0.1, 0.1], g_C = [0, -0.1, 0, 0.1].
    // Positions 1, 2, 3: A, p = [0.2, 0.8], h = [2, 0]: a = [0.2, -0.2],
    //   g_A = [0.4, 0, -0.4, 0], ‖g_A‖² = 0.32 > ‖g_C‖² = 0.02.
    // First: the largest norm, A at position 1 (tied with 2 and 3). Then D² is 0 for the
    // copies of A and ‖g_C - g_A‖² = 0.16 + 0.01 + 0.16 + 0.01 = 0.34 for C: C is drawn
    // with probability 1. Then every D² left is 0: the lowest unpicked positions, 2 then 3.
    let h = features(&[0.0, 1.0, 2.0, 0.0, 2.0, 0.0, 2.0, 0.0], 2);
    let p = probabilities(&[0.9, 0.1, 0.2, 0.8, 0.2, 0.8, 0.2, 0.8], 2);
    for seed in 0..16 {
        for chunk_len in [1, 3, 4] {
            let badge = Badge::new(seed).with_chunk_len(chunk_len);
            let selection = select(&badge, &h, &p, 4);
            assert_eq!(selection.positions, vec![1, 0, 2, 3], "seed {seed}");
            assert_close(
                &selection.scores,
                &[0.32f32.sqrt(), 0.34f32.sqrt(), 0.0, 0.0],
                "scores",
            );
        }
    }
}

#[test]
fn draws_follow_the_squared_distance() {
    // p = [0.5, 0.5] everywhere (a = [-0.5, 0.5]), so ‖g_i - g_j‖² = ‖h_i - h_j‖² / 2.
    // A = (20, 0) has the largest norm; B = (19, 0) is at D² = 0.5 from it, C = (18, 0) at
    // D² = 2: the second pick is C with probability 2 / 2.5 = 0.8.
    let h = features(&[20.0, 0.0, 19.0, 0.0, 18.0, 0.0], 2);
    let p = probabilities(&[0.5; 6], 2);
    let draws = 4000;
    let c_picks = (0..draws)
        .filter(|&seed| {
            let selection = select(&Badge::new(seed), &h, &p, 2);
            assert_eq!(selection.positions[0], 0);
            selection.positions[1] == 2
        })
        .count();
    let share = c_picks as f64 / draws as f64;
    // Four standard deviations of a binomial share: sqrt(0.8 · 0.2 / 4000) ≈ 0.0063.
    assert!(
        (share - 0.8).abs() < 0.026,
        "C drawn {share} of the time, expected 0.8"
    );
}

#[test]
fn factored_distances_equal_the_explicit_gradient_embeddings() {
    let (n, c, d, k) = (30, 3, 4, 8);
    let h = random_embeddings(n, d, 5);
    let p = random_class_probabilities(n, c, 6);
    for bias in [false, true] {
        let badge = Badge::new(9).with_bias(bias);
        let g = badge.gradient_embeddings(&h, &p).expect("embeddings");
        let distance = |i: usize, j: &[f32]| -> f32 {
            g.row(i)
                .iter()
                .zip(j)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>()
                .sqrt()
        };
        let zero = vec![0.0; g.dim()];
        let norms: Vec<f32> = (0..n).map(|i| distance(i, &zero)).collect();
        let selection = select(&badge, &h, &p, k);
        assert_close(&selection.pool_scores, &norms, "norms");
        let largest = norms.iter().copied().fold(0.0, f32::max);
        assert_eq!(norms[selection.positions[0]], largest);
        for (m, &pick) in selection.positions.iter().enumerate().skip(1) {
            let nearest = selection.positions[..m]
                .iter()
                .map(|&earlier| distance(pick, g.row(earlier)))
                .fold(f32::INFINITY, f32::min);
            assert!(
                (selection.scores[m] - nearest).abs() < 1e-4,
                "bias {bias}, pick {m}: {} vs {nearest}",
                selection.scores[m]
            );
        }
        let mut unique = selection.positions.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), k, "no item twice");
    }
}

#[test]
fn seeded_deterministic_and_resumable() {
    let h = random_embeddings(60, 8, 7);
    let p = random_class_probabilities(60, 4, 8);
    let badge = Badge::new(21);
    let first = select(&badge, &h, &p, 10);
    let second = select(&badge, &h, &p, 10);
    assert_eq!(badge.draws(), 2);
    assert_eq!(select(&Badge::new(21), &h, &p, 10), first);
    let resumed = Badge::new(21);
    resumed.set_draws(1);
    assert_eq!(select(&resumed, &h, &p, 10), second);
    let others: Vec<_> = (0..4)
        .map(|seed| select(&Badge::new(seed), &h, &p, 10).positions)
        .collect();
    assert!(
        others.iter().any(|o| o != &first.positions),
        "seeds change the draws"
    );
    assert_ne!(
        Badge::new(21).identity(),
        Badge::new(21).with_bias(true).identity()
    );
}

#[test]
fn streaming_in_chunks_matches_the_in_memory_selection() {
    let (n, c, d, k) = (40, 5, 12, 6);
    let h = random_embeddings(n, d, 10);
    let p = random_class_probabilities(n, c, 11);
    let expected = select(&Badge::new(2), &h, &p, k);
    for chunk_len in [1, 3, n] {
        let streamed_h = StreamedEmbeddings::new(&h);
        let streamed_p = StreamedProbabilities::new(&p);
        let input = EmbeddingInput::new(&streamed_h).with_probabilities(&streamed_p);
        let badge = Badge::new(2).with_chunk_len(chunk_len);
        let selection = badge.select_with_embeddings(&input, k).expect("select");
        assert_eq!(selection, expected, "chunks of {chunk_len}");
        // k passes (the norms, then one after each pick but the last) and k - 1 pick rows.
        let rows = k * n + k - 1;
        assert_eq!(streamed_h.rows_read.get(), rows, "chunks of {chunk_len}");
        assert_eq!(streamed_p.rows_read.get(), rows, "chunks of {chunk_len}");
    }
}

#[test]
fn class_probabilities_from_predictions_average_the_mc_samples() {
    // [N = 2, C = 2, T = 2].
    let values = vec![0.2f32, 0.6, 0.8, 0.4, 1.0, 0.5, 0.0, 0.5];
    let probs = Tensor::<3>::from_data(TensorData::new(values, [2, 2, 2]), &device());
    let predictions = Predictions::from_probs(probs).expect("valid");
    let mean = ClassProbabilities::from_predictions(&predictions).expect("mean");
    assert_close(mean.as_slice(), &[0.4, 0.6, 0.75, 0.25], "mean");
    let regression = Tensor::<3>::from_data(TensorData::new(vec![3.0f32; 4], [2, 1, 2]), &device());
    let err = ClassProbabilities::from_predictions(
        &Predictions::from_regression(regression).expect("valid"),
    )
    .expect_err("regression outputs");
    assert!(err.to_string().contains("class probabilities"), "{err}");
    let tensor = Tensor::<2>::from_data(TensorData::new(vec![0.5f32, 0.5], [1, 2]), &device());
    assert_eq!(
        ClassProbabilities::from_tensor(tensor)
            .expect("valid")
            .len(),
        1
    );
}

#[test]
fn bad_input_is_an_error_with_a_message() {
    let h = features(&[1.0, 2.0, 3.0, 4.0], 2);
    let p = probabilities(&[0.5, 0.5, 0.9, 0.1], 2);
    let badge = Badge::new(0);
    let err = badge
        .select_with_embeddings(&EmbeddingInput::new(&h), 1)
        .expect_err("no probabilities");
    assert!(matches!(
        err,
        HeuristicError::MissingProbabilities { heuristic: "badge" }
    ));
    assert!(err.to_string().contains("with_probabilities"), "{err}");
    let err = badge
        .select_with_embeddings(&EmbeddingInput::new(&h).with_probabilities(&p), 3)
        .expect_err("k > N");
    assert!(matches!(
        err,
        HeuristicError::QueryTooLarge {
            requested: 3,
            available: 2
        }
    ));
    let three = probabilities(&[0.5, 0.5, 0.9, 0.1, 1.0, 0.0], 2);
    let err = badge
        .select_with_embeddings(&EmbeddingInput::new(&h).with_probabilities(&three), 1)
        .expect_err("3 rows of probabilities for 2 items");
    assert!(
        err.to_string().contains("one row per pool item (N = 2)"),
        "{err}"
    );
    assert!(badge.gradient_embeddings(&h, &three).is_err());
    let err = ClassProbabilities::new(vec![0.5, 0.5, 0.6, 0.6], [2, 2]).expect_err("sum 1.2");
    assert!(
        matches!(err, HeuristicError::NotNormalised { item: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("sum to 1.2"), "{err}");
    let err = ClassProbabilities::new(vec![1.5, -0.5], [1, 2]).expect_err("out of range");
    assert!(matches!(
        err,
        HeuristicError::ProbabilityOutOfRange {
            item: 0,
            class: 0,
            ..
        }
    ));
    let err = ClassProbabilities::new(vec![f32::NAN, 1.0], [1, 2]).expect_err("NaN");
    assert!(matches!(err, HeuristicError::NonFinite { item: 0 }));
    assert!(ClassProbabilities::new(vec![1.0; 3], [2, 2]).is_err());
    let err = Embeddings::new(vec![1.0, f32::INFINITY], [1, 2]).expect_err("infinity");
    assert!(err.to_string().contains("feature 1"), "{err}");
}

#[test]
fn predictions_only_entry_points_say_what_it_needs() {
    let preds = Predictions::from_probs(tensor3(&random_probs(4, 3, 2, 1.0, 0))).expect("valid");
    let badge: Box<dyn Heuristic> = Box::new(Badge::new(0));
    // It reads the MC-averaged predictions, beside the embeddings.
    assert!(badge.needs_embeddings() && badge.needs_predictions());
    for err in [
        badge.scores(&preds, None).map(|_| ()).expect_err("scores"),
        badge
            .select(&preds, None, 2)
            .map(|_| ())
            .expect_err("select"),
        badge
            .select_scores(vec![0.5; 4], 2)
            .map(|_| ())
            .expect_err("select_scores"),
        badge
            .select_without_predictions(4, 2)
            .map(|_| ())
            .expect_err("without"),
    ] {
        assert!(matches!(
            err,
            HeuristicError::NeedsEmbeddings {
                heuristic: "badge",
                ..
            }
        ));
        assert!(err.to_string().contains("class probabilities"), "{err}");
    }
}
