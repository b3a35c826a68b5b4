//! Scoring a pool chunk by chunk gives what scoring it whole gives.

use crate::common::*;
use baal_heuristics::{
    Bald, BatchBald, Certainty, Entropy, Epig, Heuristic, HeuristicError, HeuristicKind,
    HeuristicParams, Margin, PoolScorer, PoolScores, Predictions, Variance, VariationRatio,
};
use burn::tensor::Tensor;

/// The pool's predictions pushed in chunks of `chunk` items.
fn stream(
    heuristic: &dyn Heuristic,
    probs: &Tensor<3>,
    target: Option<&Predictions>,
    chunk: usize,
    candidates: Option<usize>,
) -> PoolScores {
    let n = probs.dims()[0];
    let mut scorer = PoolScorer::new(heuristic, target, candidates).expect("scorer");
    for start in (0..n).step_by(chunk) {
        let len = chunk.min(n - start);
        let part = Predictions::from_probs(probs.clone().narrow(0, start, len)).expect("chunk");
        scorer.push(&part).expect("push");
    }
    assert_eq!(scorer.len(), n);
    scorer.finish()
}

fn pool(n: usize, seed: u64) -> Tensor<3> {
    tensor3(&random_probs(n, 4, 6, 2.0, seed))
}

#[test]
fn per_item_heuristics_rank_a_streamed_pool_as_the_whole_pool() {
    let probs = pool(103, 1);
    let whole = Predictions::from_probs(probs.clone()).expect("pool");
    let heuristics: Vec<Box<dyn Heuristic>> = vec![
        Box::new(Bald),
        Box::new(Entropy),
        Box::new(Margin),
        Box::new(Certainty),
        Box::new(Variance),
        Box::new(VariationRatio),
    ];
    for heuristic in &heuristics {
        let expected = heuristic.rank(&whole, None).expect("rank");
        for chunk in [1, 7, 64, 103, 500] {
            let scores = stream(heuristic.as_ref(), &probs, None, chunk, None);
            assert!(scores.candidates().is_none(), "{}", heuristic.name());
            let ranking = scores.rank(heuristic.as_ref()).expect("rank");
            assert_eq!(
                ranking,
                expected,
                "{} in chunks of {chunk}",
                heuristic.name()
            );
            let selection = scores.select(heuristic.as_ref(), 10).expect("select");
            assert_eq!(
                selection,
                heuristic.select(&whole, None, 10).expect("select"),
                "{} in chunks of {chunk}",
                heuristic.name()
            );
        }
    }
}

#[test]
fn sampling_heuristics_draw_the_same_batch_from_a_streamed_pool() {
    let probs = pool(80, 2);
    let whole = Predictions::from_probs(probs.clone()).expect("pool");
    for kind in [
        HeuristicKind::PowerBald,
        HeuristicKind::SoftmaxBald,
        HeuristicKind::RankBald,
    ] {
        let params = HeuristicParams::new().with_query_size(5).with_seed(9);
        let direct = kind.build(&params).expect("heuristic");
        let streamed = kind.build(&params).expect("heuristic");
        let scores = stream(streamed.as_ref(), &probs, None, 13, None);
        assert_eq!(
            scores.select(streamed.as_ref(), 5).expect("select"),
            direct.select(&whole, None, 5).expect("select"),
            "{kind:?}"
        );
        assert_eq!(streamed.draws(), direct.draws());
    }
}

#[test]
fn epig_streams_the_pool_against_a_whole_target_set() {
    let probs = pool(40, 3);
    let target = Predictions::from_probs(pool(12, 4)).expect("target");
    let whole = Predictions::from_probs(probs.clone()).expect("pool");
    let expected = Epig.rank(&whole, Some(&target)).expect("rank");
    let scores = stream(&Epig, &probs, Some(&target), 9, None);
    assert_eq!(scores.rank(&Epig).expect("rank"), expected);
    assert!(matches!(
        PoolScorer::new(&Epig, None, None),
        Err(HeuristicError::MissingTarget { .. })
    ));
}

#[test]
fn batch_bald_with_every_item_a_candidate_selects_as_on_the_whole_pool() {
    let probs = pool(60, 5);
    let whole = Predictions::from_probs(probs.clone()).expect("pool");
    for chunk in [1, 8, 60] {
        let direct = BatchBald::new(6).with_seed(3);
        let streamed = BatchBald::new(6).with_seed(3);
        let scores = stream(&streamed, &probs, None, chunk, Some(60));
        assert_eq!(scores.candidates().map(|c| c.len()), Some(60));
        assert_eq!(
            scores.select(&streamed, 6).expect("select"),
            direct.select(&whole, None, 6).expect("select"),
            "chunks of {chunk}"
        );
        assert_eq!(
            scores.rank(&streamed).expect("rank"),
            direct.rank(&whole, None).expect("rank"),
            "chunks of {chunk}"
        );
    }
}

#[test]
fn batch_bald_candidates_are_the_best_by_bald_whatever_the_chunks() {
    let probs = pool(200, 6);
    let whole = Predictions::from_probs(probs.clone()).expect("pool");
    let bald = Bald.rank(&whole, None).expect("bald");
    let mut best: Vec<usize> = bald.top(25).to_vec();
    best.sort_unstable();
    let batch_bald = BatchBald::new(5);
    let reference = stream(&batch_bald, &probs, None, 200, Some(25));
    for chunk in [1, 3, 17, 64] {
        let scores = stream(&batch_bald, &probs, None, chunk, Some(25));
        let candidates = scores.candidates().expect("candidates");
        assert_eq!(candidates.positions(), best.as_slice(), "chunks of {chunk}");
        let kept: Vec<f32> = candidates
            .probs()
            .expect("probs")
            .clone()
            .try_into_vec_as::<f32>()
            .expect("f32");
        let expected: Vec<f32> = reference
            .candidates()
            .and_then(|c| c.probs())
            .expect("probs")
            .clone()
            .try_into_vec_as::<f32>()
            .expect("f32");
        assert_eq!(kept, expected, "candidate predictions in chunks of {chunk}");
        // The picks come from the candidates and the selection is the same as from the
        // candidates alone.
        let selection = scores.select(&batch_bald, 5).expect("select");
        assert!(selection.positions.iter().all(|i| best.contains(i)));
        let ranking = scores.rank(&batch_bald).expect("rank");
        assert_eq!(&ranking.positions()[..5], selection.positions.as_slice());
        assert_eq!(ranking.len(), 200);
    }
    // Equal scores: the lower pool index stays a candidate.
    let same = Tensor::<3>::cat(vec![probs.clone().narrow(0, 0, 1); 6], 0);
    let scores = stream(&batch_bald, &same, None, 1, Some(5));
    assert_eq!(
        scores.candidates().expect("candidates").positions(),
        &[0, 1, 2, 3, 4]
    );
}

#[test]
fn parts_of_a_pool_join_into_the_whole_pool_scores() {
    let probs = pool(90, 7);
    let batch_bald = BatchBald::new(4).with_seed(1);
    let whole = stream(&batch_bald, &probs, None, 16, Some(20));
    let parts: Vec<PoolScores> = [(0, 30), (30, 25), (55, 35)]
        .into_iter()
        .map(|(start, len)| {
            stream(
                &batch_bald,
                &probs.clone().narrow(0, start, len),
                None,
                16,
                Some(20),
            )
        })
        .collect();
    let joined = PoolScores::concat(parts).expect("concat");
    assert_eq!(joined.scores(), whole.scores());
    assert_eq!(
        joined.candidates().expect("candidates").positions(),
        whole.candidates().expect("candidates").positions()
    );
    let a = BatchBald::new(4).with_seed(1);
    let b = BatchBald::new(4).with_seed(1);
    assert_eq!(
        joined.select(&a, 4).expect("select"),
        whole.select(&b, 4).expect("select")
    );
    // Parts made with other settings do not join.
    let other = stream(
        &batch_bald,
        &probs.clone().narrow(0, 0, 10),
        None,
        16,
        Some(30),
    );
    let same = stream(
        &batch_bald,
        &probs.clone().narrow(0, 0, 10),
        None,
        16,
        Some(20),
    );
    assert!(PoolScores::concat(vec![same.clone(), other]).is_err());
    let per_item = stream(&Bald, &probs.clone().narrow(0, 0, 10), None, 16, None);
    assert!(PoolScores::concat(vec![same, per_item]).is_err());
    assert!(PoolScores::concat(Vec::new()).is_err());
}

#[test]
fn bad_settings_are_errors() {
    // Fewer candidates than BatchBALD's batch.
    let error = PoolScorer::new(&BatchBald::new(10), None, Some(5))
        .err()
        .expect("refused");
    assert!(error.to_string().contains("at least that many"), "{error}");
    // A heuristic that reads no predictions.
    let random = HeuristicKind::Random
        .build(&HeuristicParams::new())
        .expect("random");
    assert!(PoolScorer::new(random.as_ref(), None, None).is_err());
    // A query larger than the pool.
    let scores = stream(&Bald, &pool(5, 8), None, 2, None);
    assert!(matches!(
        scores.select(&Bald, 6),
        Err(HeuristicError::QueryTooLarge { .. })
    ));
}
