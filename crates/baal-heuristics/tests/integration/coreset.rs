//! Coreset (k-center greedy): hand-worked selections, streaming, bad input.

use crate::common::*;
use baal_heuristics::{
    Bald, CoreSet, EmbeddingInput, Embeddings, Heuristic, HeuristicError, Predictions, Selection,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn points(values: &[f32], d: usize) -> Embeddings {
    Embeddings::new(values.to_vec(), [values.len() / d, d]).expect("valid")
}

fn select(pool: &Embeddings, labelled: Option<&Embeddings>, k: usize, seed: u64) -> Selection {
    let mut input = EmbeddingInput::new(pool);
    if let Some(labelled) = labelled {
        input = input.with_labelled(labelled);
    }
    CoreSet::new(seed)
        .select_with_embeddings(&input, k)
        .expect("select")
}

#[test]
fn one_dimension_with_a_labelled_item() {
    // Pool 0, 1, 10, 11 (positions 0..4); labelled {0}. Distances to the nearest centre:
    //   start:               [0, 1, 10, 11]  -> pick 11 (position 3), score 11
    //   centre 11 added:     [0, 1,  1,  0]  -> 1 and 10 tie at 1: the lowest position, 1
    //   centre 1 added:      [0, 0,  1,  0]  -> pick 10 (position 2), score 1
    let pool = points(&[0.0, 1.0, 10.0, 11.0], 1);
    let labelled = points(&[0.0], 1);
    let two = select(&pool, Some(&labelled), 2, 0);
    assert_eq!(two.positions, vec![3, 1]);
    assert_eq!(two.scores, vec![11.0, 1.0]);
    // What is left to cover: 10 is 1 from its nearest centre (11); the rest are centres or 0.
    assert_eq!(two.pool_scores, vec![0.0, 0.0, 1.0, 0.0]);
    let three = select(&pool, Some(&labelled), 3, 0);
    assert_eq!(three.positions, vec![3, 1, 2]);
    assert_eq!(three.scores, vec![11.0, 1.0, 1.0]);
    // The seed only draws a first centre when nothing is labelled.
    assert_eq!(select(&pool, Some(&labelled), 3, 99), three);
    // The labelled point itself in the pool (position 0) is at distance 0: picked last.
    assert_eq!(
        select(&pool, Some(&labelled), 4, 0).positions,
        vec![3, 1, 2, 0]
    );
}

/// 2-D points A(0,0), B(3,4), C(6,0), D(3,1); |AB| = 5, |AC| = 6, |AD| = √10, |BC| = 5,
/// |BD| = 3, |CD| = √10. For each first centre, the next two picks and their scores:
///   A: C (6, farthest from A), then B (min(5, 5) = 5 beats D's min(√10, √10))
///   B: A and C tie at 5 -> A; then C (min(5, 6) = 5 beats D's min(3, √10) = 3)
///   C: A (6), then B (min(5, 5) = 5 beats D's √10)
///   D: A and C tie at √10 -> A; then C (min(√10, 6) = √10 beats B's min(3, 5) = 3)
fn expected_after(first: usize) -> (Vec<usize>, Vec<f32>) {
    let root10 = 10f32.sqrt();
    match first {
        0 => (vec![0, 2, 1], vec![6.0, 5.0]),
        1 => (vec![1, 0, 2], vec![5.0, 5.0]),
        2 => (vec![2, 0, 1], vec![6.0, 5.0]),
        3 => (vec![3, 0, 2], vec![root10, root10]),
        _ => unreachable!(),
    }
}

#[test]
fn two_dimensions_without_labelled_items_start_from_a_seeded_draw() {
    let pool = points(&[0.0, 0.0, 3.0, 4.0, 6.0, 0.0, 3.0, 1.0], 2);
    let mut firsts = std::collections::BTreeSet::new();
    for seed in 0..24 {
        let selection = select(&pool, None, 3, seed);
        let first = selection.positions[0];
        // The documented draw: uniform over the pool from stream 0 of the seed.
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(0);
        assert_eq!(first, rng.random_range(0..4), "seed {seed}");
        let (positions, scores) = expected_after(first);
        assert_eq!(selection.positions, positions, "seed {seed}");
        assert_eq!(
            selection.scores[0],
            f32::INFINITY,
            "no centre before the first"
        );
        assert_eq!(&selection.scores[1..], scores.as_slice(), "seed {seed}");
        firsts.insert(first);
        // An empty labelled set is no labelled set.
        let empty = Embeddings::empty(2).expect("valid");
        assert_eq!(select(&pool, Some(&empty), 3, seed), selection);
    }
    assert!(firsts.len() > 1, "the seed changes the first centre");
}

#[test]
fn two_dimensions_with_labelled_items() {
    // Labelled D(3,1) and (6,1). Distances of A, B, C to the nearest: A √10 (to D), B 3 (to
    // D), C 1 (to (6,1)) -> A first (√10); then B (min(3, 5) = 3) beats C (min(1, 6) = 1).
    let pool = points(&[0.0, 0.0, 3.0, 4.0, 6.0, 0.0], 2);
    let labelled = points(&[3.0, 1.0, 6.0, 1.0], 2);
    let selection = select(&pool, Some(&labelled), 3, 5);
    assert_eq!(selection.positions, vec![0, 1, 2]);
    assert_eq!(selection.scores, vec![10f32.sqrt(), 3.0, 1.0]);
}

#[test]
fn draws_advance_and_resume() {
    let pool = random_embeddings(40, 3, 1);
    let coreset = CoreSet::new(11);
    let input = EmbeddingInput::new(&pool);
    let first = coreset.select_with_embeddings(&input, 5).expect("select");
    assert_eq!(coreset.draws(), 1);
    let second = coreset.select_with_embeddings(&input, 5).expect("select");
    let resumed = CoreSet::new(11);
    resumed.set_draws(1);
    assert_eq!(
        resumed.select_with_embeddings(&input, 5).expect("select"),
        second
    );
    assert_eq!(
        CoreSet::new(11)
            .select_with_embeddings(&input, 5)
            .expect("select"),
        first
    );
}

#[test]
fn streaming_in_chunks_matches_the_in_memory_selection() {
    let (n, d, k) = (50, 16, 7);
    let pool = random_embeddings(n, d, 2);
    let labelled = random_embeddings(9, d, 3);
    for with_labelled in [true, false] {
        let memory_input = EmbeddingInput::new(&pool);
        let memory_input = if with_labelled {
            memory_input.with_labelled(&labelled)
        } else {
            memory_input
        };
        let expected = CoreSet::new(4)
            .select_with_embeddings(&memory_input, k)
            .expect("select");
        for chunk_len in [1, 3, n] {
            let streamed = StreamedEmbeddings::new(&pool);
            let streamed_labelled = StreamedEmbeddings::new(&labelled);
            let mut input = EmbeddingInput::new(&streamed);
            if with_labelled {
                input = input.with_labelled(&streamed_labelled);
            }
            let coreset = CoreSet::new(4).with_chunk_len(chunk_len);
            let selection = coreset.select_with_embeddings(&input, k).expect("select");
            assert_eq!(selection, expected, "chunks of {chunk_len}");
            // One pass for the labelled set, one after each pick, plus each pick's own row.
            let passes = k + usize::from(with_labelled);
            assert_eq!(
                streamed.rows_read.get(),
                passes * n + k,
                "chunks of {chunk_len}"
            );
        }
    }
}

#[test]
fn farthest_first_covers_clusters() {
    // Three tight clusters far apart, one labelled item in the first: the two picks are one
    // from each of the other clusters.
    let mut values = Vec::new();
    for centre in [0.0f32, 100.0, 200.0] {
        for i in 0..5 {
            values.extend([centre + i as f32 * 0.1, centre]);
        }
    }
    let pool = points(&values, 2);
    let labelled = points(&[0.0, 0.0], 2);
    let selection = select(&pool, Some(&labelled), 2, 0);
    let cluster = |position: usize| position / 5;
    assert_eq!(
        selection
            .positions
            .iter()
            .map(|&p| cluster(p))
            .collect::<Vec<_>>(),
        vec![2, 1]
    );
}

#[test]
fn bad_input_is_an_error_with_a_message() {
    let pool = points(&[0.0, 1.0, 2.0], 1);
    let coreset = CoreSet::new(0);
    let input = EmbeddingInput::new(&pool);
    let err = coreset
        .select_with_embeddings(&input, 4)
        .expect_err("k > N");
    assert!(matches!(
        err,
        HeuristicError::QueryTooLarge {
            requested: 4,
            available: 3
        }
    ));
    assert!(coreset.select_with_embeddings(&input, 0).is_err());
    let err = Embeddings::new(vec![0.0, 1.0, f32::NAN, 2.0], [2, 2]).expect_err("NaN");
    assert!(
        matches!(
            err,
            HeuristicError::NonFiniteEmbedding {
                item: 1,
                feature: 0
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("item 1"), "{err}");
    assert!(Embeddings::new(vec![0.0; 5], [2, 2]).is_err());
    assert!(Embeddings::new(vec![], [0, 0]).is_err());
    let labelled = points(&[0.0, 0.0], 2);
    let err = coreset
        .select_with_embeddings(&input.with_labelled(&labelled), 1)
        .expect_err("dimension mismatch");
    assert!(err.to_string().contains("labelled embeddings"), "{err}");
    assert!(err.to_string().contains("[L, 1]"), "{err}");
}

/// A source whose chunks break their promise.
struct Broken;

impl baal_heuristics::EmbeddingSource for Broken {
    fn len(&self) -> usize {
        10
    }
    fn dim(&self) -> usize {
        2
    }
    fn chunk(&self, start: usize, end: usize) -> baal_heuristics::Result<Embeddings> {
        if start >= 6 {
            // Item 7 is NaN.
            let mut values = vec![0.5; (end - start) * 2];
            if (start..end).contains(&7) {
                values[(7 - start) * 2 + 1] = f32::NAN;
            }
            return Embeddings::new(values, [end - start, 2]);
        }
        Embeddings::new(vec![0.0; (end - start) * 3], [end - start, 3])
    }
}

#[test]
fn a_bad_chunk_is_an_error_naming_the_pool_item() {
    struct After6(Broken);
    impl baal_heuristics::EmbeddingSource for After6 {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn dim(&self) -> usize {
            2
        }
        fn chunk(&self, start: usize, end: usize) -> baal_heuristics::Result<Embeddings> {
            if start < 6 {
                return Embeddings::new(vec![1.0; (end - start) * 2], [end - start, 2]);
            }
            self.0.chunk(start, end)
        }
    }
    let coreset = CoreSet::new(0).with_chunk_len(3);
    let err = coreset
        .select_with_embeddings(&EmbeddingInput::new(&Broken), 2)
        .expect_err("3 columns for 2");
    assert!(err.to_string().contains("embedding chunk"), "{err}");
    let err = coreset
        .select_with_embeddings(&EmbeddingInput::new(&After6(Broken)), 2)
        .expect_err("NaN at item 7");
    assert!(
        matches!(
            err,
            HeuristicError::NonFiniteEmbedding {
                item: 7,
                feature: 1
            }
        ),
        "{err}"
    );
}

#[test]
fn predictions_only_entry_points_say_what_it_needs() {
    let preds = Predictions::from_probs(tensor3(&random_probs(4, 3, 2, 1.0, 0))).expect("valid");
    let boxed: Box<dyn Heuristic> = Box::new(CoreSet::new(0));
    assert!(boxed.needs_embeddings() && !boxed.needs_predictions());
    let errors = [
        boxed
            .score_tensor(&preds, None)
            .map(|_| ())
            .expect_err("score_tensor"),
        boxed.scores(&preds, None).map(|_| ()).expect_err("scores"),
        boxed.rank(&preds, None).map(|_| ()).expect_err("rank"),
        boxed
            .select(&preds, None, 2)
            .map(|_| ())
            .expect_err("select"),
        boxed
            .rank_scores(vec![1.0; 4])
            .map(|_| ())
            .expect_err("rank_scores"),
        boxed
            .select_scores(vec![1.0; 4], 2)
            .map(|_| ())
            .expect_err("select_scores"),
        boxed
            .scores_without_predictions(4)
            .map(|_| ())
            .expect_err("scores_without"),
        boxed
            .select_without_predictions(4, 2)
            .map(|_| ())
            .expect_err("select_without"),
    ];
    for err in errors {
        assert!(matches!(
            err,
            HeuristicError::NeedsEmbeddings {
                heuristic: "coreset",
                ..
            }
        ));
        assert!(err.to_string().contains("select_with_embeddings"), "{err}");
    }
    // The boxed heuristic selects with embeddings like the bare one.
    let pool = points(&[0.0, 1.0, 10.0, 11.0], 1);
    let labelled = points(&[0.0], 1);
    let input = EmbeddingInput::new(&pool).with_labelled(&labelled);
    assert_eq!(
        boxed
            .select_with_embeddings(&input, 1)
            .expect("select")
            .positions,
        vec![3]
    );
    // A heuristic of predictions refuses embeddings.
    let err = Bald
        .select_with_embeddings(&input, 1)
        .expect_err("not by embeddings");
    assert!(matches!(
        err,
        HeuristicError::NoEmbeddingSelection { heuristic: "bald" }
    ));
    assert!(!Bald.needs_embeddings());
}
