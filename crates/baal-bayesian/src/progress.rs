//! An optional terminal progress bar (indicatif, behind the `progress` feature), shared with
//! `baal-active`'s trainer.

/// A progress bar over `len` units, or nothing when not shown or when the `progress` feature
/// is off. Indicatif hides it anyway when standard error is not a terminal.
#[derive(Debug)]
pub struct ProgressBar {
    #[cfg(feature = "progress")]
    bar: Option<indicatif::ProgressBar>,
}

impl ProgressBar {
    /// A bar titled `label`, counting `len` `unit`s; `show = false` gives a silent one.
    #[cfg_attr(not(feature = "progress"), allow(unused_variables))]
    #[must_use]
    pub fn new(label: &str, len: usize, unit: &str, show: bool) -> Self {
        #[cfg(feature = "progress")]
        {
            let bar = show.then(|| {
                let bar = indicatif::ProgressBar::new(len as u64);
                if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
                    "{label} {{bar:40}} {{pos}}/{{len}} {unit} [{{elapsed_precise}} < {{eta_precise}}]"
                )) {
                    bar.set_style(style);
                }
                bar
            });
            Self { bar }
        }
        #[cfg(not(feature = "progress"))]
        Self {}
    }

    /// Moves the bar `n` units on.
    #[cfg_attr(not(feature = "progress"), allow(unused_variables))]
    pub fn advance(&self, n: usize) {
        #[cfg(feature = "progress")]
        if let Some(bar) = &self.bar {
            bar.inc(n as u64);
        }
    }

    /// Clears the bar from the terminal.
    pub fn finish(&self) {
        #[cfg(feature = "progress")]
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
