//! Learning-curve plots (SVG, plotters).

use std::path::Path;

use plotters::prelude::*;

use crate::error::{ActiveError, Result};

/// One curve: a name and points `(labelled items, value, spread)`; the spread (e.g. the
/// standard deviation over seeds) is drawn as a band when positive.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    /// The legend.
    pub name: String,
    /// `(x, y, spread)` points, in increasing x.
    pub points: Vec<(f64, f64, f64)>,
}

/// Draws `curves` (a metric such as test accuracy, or its difference to a baseline, against
/// labelled items) to the SVG file `path`; the x axis has integer ticks, and a y range that
/// spans zero gets a zero line.
///
/// # Errors
/// No point to draw, or the file cannot be written.
pub fn plot_learning_curves(
    path: &Path,
    title: &str,
    y_label: &str,
    curves: &[Curve],
) -> Result<()> {
    let plot_error = |message: String| ActiveError::Plot {
        path: path.to_path_buf(),
        message,
    };
    let Some(((x_min, x_max), (y_min, y_max))) = bounds(curves) else {
        return Err(plot_error("no point to draw".into()));
    };
    let margin = ((y_max - y_min) * 0.05).max(0.01);
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(x_min..x_max, (y_min - margin)..(y_max + margin))
        .map_err(|e| plot_error(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("labelled items")
        .y_desc(y_label)
        // Labelled items are whole numbers: "100", not "100.0".
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(|e| plot_error(e.to_string()))?;
    // A curve of differences gets its zero line.
    if y_min - margin < 0.0 && 0.0 < y_max + margin {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x_min, 0.0), (x_max, 0.0)],
                BLACK.mix(0.5).stroke_width(1),
            )))
            .map_err(|e| plot_error(e.to_string()))?;
    }
    for (i, curve) in curves.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        if curve.points.iter().any(|p| p.2 > 0.0) {
            let band: Vec<(f64, f64)> = curve
                .points
                .iter()
                .map(|&(x, y, s)| (x, y + s))
                .chain(curve.points.iter().rev().map(|&(x, y, s)| (x, y - s)))
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(
                    band,
                    color.mix(0.15).filled(),
                )))
                .map_err(|e| plot_error(e.to_string()))?;
        }
        chart
            .draw_series(LineSeries::new(
                curve.points.iter().map(|&(x, y, _)| (x, y)),
                color.stroke_width(2),
            ))
            .map_err(|e| plot_error(e.to_string()))?
            .label(curve.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| plot_error(e.to_string()))?;
    root.present().map_err(|e| plot_error(e.to_string()))?;
    Ok(())
}

/// The x range and the y range (with the spreads) of every point; `None` without a point. A
/// single x gets a range of one.
#[allow(clippy::type_complexity)]
fn bounds(curves: &[Curve]) -> Option<((f64, f64), (f64, f64))> {
    let (mut x_min, mut x_max, mut y_min, mut y_max) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y, spread) in curves.iter().flat_map(|c| c.points.iter()) {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_min = y_min.min(y - spread.max(0.0));
        y_max = y_max.max(y + spread.max(0.0));
    }
    if x_min > x_max {
        return None;
    }
    if x_max == x_min {
        x_max = x_min + 1.0;
    }
    Some(((x_min, x_max), (y_min, y_max)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labelled_items_are_whole_numbers_on_the_axis() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| ActiveError::io(Path::new("tmp"), e))?;
        let path = dir.path().join("curve.svg");
        let curve = Curve {
            name: "bald".into(),
            points: (0..16)
                .map(|i| {
                    (
                        100.0 + 20.0 * f64::from(i),
                        -0.02 + 0.005 * f64::from(i),
                        0.01,
                    )
                })
                .collect(),
        };
        plot_learning_curves(&path, "difference", "accuracy - random", &[curve])?;
        let svg = std::fs::read_to_string(&path).map_err(|e| ActiveError::io(&path, e))?;
        // Tick labels are text elements of their own line.
        let labels: Vec<&str> = svg.lines().map(str::trim).collect();
        assert!(
            labels.contains(&"200") && labels.contains(&"300"),
            "no integer tick"
        );
        assert!(
            !labels.contains(&"200.0") && !labels.contains(&"300.0"),
            "float ticks"
        );
        Ok(())
    }
}
