//! `ndarray` views in, arrays out: the same scores as the tensor path.

use crate::common::*;
use baal_heuristics::{
    Bald, Entropy, Heuristic, HeuristicError, Predictions, Reduction, ScoresArray, Variance,
};
use ndarray::{Array3, Array4, ArrayView3};

fn array(values: &[Vec<Vec<f64>>]) -> Array3<f64> {
    let (n, c, t) = (values.len(), values[0].len(), values[0][0].len());
    Array3::from_shape_fn((n, c, t), |(i, j, k)| values[i][j][k])
}

#[test]
fn views_of_f32_and_f64_score_as_tensors_do() {
    let pool = random_probs(30, 4, 5, 2.0, 1);
    let expected = Bald.scores(&predictions(&pool), None).expect("scores");
    let doubles = array(&pool);
    let from_f64 = Predictions::from_ndarray_probs(doubles.view(), &device()).expect("valid");
    assert_eq!(
        Bald.scores_array(&from_f64, None).expect("scores").to_vec(),
        expected
    );
    let singles = doubles.mapv(|v| v as f32);
    let from_f32 = Predictions::from_ndarray_probs(singles.view(), &device()).expect("valid");
    assert_eq!(Bald.scores(&from_f32, None).expect("scores"), expected);
    // A view with other strides (the classes and iterations swapped back from a transposed
    // array) reads the same values.
    let transposed = singles
        .clone()
        .permuted_axes([0, 2, 1])
        .as_standard_layout()
        .into_owned();
    let strided: ArrayView3<f32> = transposed.view().permuted_axes([0, 2, 1]);
    assert!(strided.as_slice().is_none(), "not in C order");
    let from_strided = Predictions::from_ndarray_probs(strided, &device()).expect("valid");
    assert_eq!(Bald.scores(&from_strided, None).expect("scores"), expected);
    // Selections and rankings come back as arrays.
    let ranking = Entropy.rank(&from_f32, None).expect("rank");
    assert_eq!(ranking.positions_array().to_vec(), ranking.positions());
    assert_eq!(ranking.scores_array().to_vec(), ranking.scores());
    let selection = Entropy.select(&from_f32, None, 4).expect("select");
    assert_eq!(selection.positions_array().to_vec(), selection.positions);
    assert_eq!(selection.scores_array().to_vec(), selection.scores);
}

#[test]
fn logits_segmentation_and_regression_views_work_and_bad_values_are_errors() {
    let logits = Array3::from_shape_fn((5, 3, 4), |(i, j, k)| (i + 2 * j + k) as f32 * 0.3);
    let from_logits = Predictions::from_ndarray_logits(logits.view(), &device()).expect("valid");
    assert_eq!(from_logits.len(), 5);
    let segmentation = Array4::from_shape_fn((2, 2, 3, 4), |(_, c, _, _)| 0.25 + 0.5 * c as f32);
    let seg = Predictions::from_ndarray_segmentation_probs(
        segmentation.view(),
        Reduction::Mean,
        &device(),
    )
    .expect("valid");
    assert_eq!(seg.n_positions(), 3);
    let outputs = Array3::from_shape_fn((4, 1, 6), |(i, _, k)| (i * k) as f64);
    let regression = Predictions::from_ndarray_regression(outputs.view(), &device()).expect("ok");
    let variance = Variance.scores_array(&regression, None).expect("scores");
    assert_eq!(variance[0], 0.0, "item 0's outputs are all 0");
    assert!(variance[3] > variance[1]);
    // Probabilities that do not sum to one name the item.
    let mut bad = array(&random_probs(6, 3, 2, 1.0, 2));
    bad[[4, 0, 1]] += 0.5;
    let error = Predictions::from_ndarray_probs(bad.view(), &device()).expect_err("refused");
    assert!(
        matches!(error, HeuristicError::NotNormalised { item: 4, .. }),
        "{error}"
    );
}
