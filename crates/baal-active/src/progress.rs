//! An optional progress bar (indicatif behind the `progress` feature).

pub(crate) struct Bar {
    #[cfg(feature = "progress")]
    bar: Option<indicatif::ProgressBar>,
}

impl Bar {
    #[cfg_attr(not(feature = "progress"), allow(unused_variables))]
    pub(crate) fn new(len: usize, unit: &str, show: bool) -> Self {
        #[cfg(feature = "progress")]
        {
            let bar = show.then(|| {
                let bar = indicatif::ProgressBar::new(len as u64);
                if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
                    "training {{bar:40}} {{pos}}/{{len}} {unit} [{{elapsed_precise}} < {{eta_precise}}]"
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

    #[cfg_attr(not(feature = "progress"), allow(unused_variables))]
    pub(crate) fn advance(&self, n: usize) {
        #[cfg(feature = "progress")]
        if let Some(bar) = &self.bar {
            bar.inc(n as u64);
        }
    }

    pub(crate) fn finish(&self) {
        #[cfg(feature = "progress")]
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
