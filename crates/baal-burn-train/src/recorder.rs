//! What the adapter hooks into burn-train: a metric logger that records each fit's epochs and
//! metric values, a renderer that draws nothing, and the validation loader of a fit without a
//! validation set.

use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::DatasetError;
use burn::tensor::Device;
use burn::train::LearnerSummary;
use burn::train::logger::{EvaluationProgressLogger, MetricLogger, TrainingProgressLogger};
use burn::train::metric::store::{EpochSummary, MetricsUpdate, Split};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};

/// The numeric metric values of one fit, by metric name then epoch (1-based), as burn-train
/// logs them: each batch's value, then the epoch's final value.
#[derive(Default)]
struct FitLog {
    names: HashMap<MetricId, String>,
    entries: HashMap<(String, Split, usize), Vec<NumericEntry>>,
    /// Epochs whose training split ended.
    train_epochs: usize,
}

/// A burn-train [`MetricLogger`] that keeps one fit's metrics in memory and counts its
/// epochs; clones share the log, so that the adapter reads it after burn-train has consumed
/// the logger.
///
/// It answers burn-train's own queries ([`read_numeric`](MetricLogger::read_numeric)) as
/// burn-train's in-memory logger does, so early stopping and metric-based checkpointing work
/// with it as the only logger.
#[derive(Clone, Default)]
pub(crate) struct FitRecorder {
    log: Arc<Mutex<FitLog>>,
}

/// What a [`FitRecorder`] saw during a fit.
pub(crate) struct Recorded {
    pub train_epochs: usize,
    pub train_metrics: BTreeMap<String, Vec<f64>>,
    pub valid_metrics: BTreeMap<String, Vec<f64>>,
}

impl FitRecorder {
    fn lock(&self) -> MutexGuard<'_, FitLog> {
        // A panic in another holder leaves the log as it was; reading it stays meaningful.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The epochs trained and each metric's final value per epoch (epochs whose split
    /// logged no final value are left out).
    pub(crate) fn recorded(&self) -> Recorded {
        let log = self.lock();
        let mut by_split: [BTreeMap<String, BTreeMap<usize, f64>>; 2] = Default::default();
        for ((name, split, epoch), entries) in &log.entries {
            let slot = match split {
                Split::Train => 0,
                Split::Valid => 1,
                Split::Test(_) => continue,
            };
            if let Some(NumericEntry::Final(value)) = entries.last() {
                by_split[slot]
                    .entry(name.clone())
                    .or_default()
                    .insert(*epoch, *value);
            }
        }
        let [train, valid] = by_split.map(|metrics| {
            metrics
                .into_iter()
                .map(|(name, epochs)| (name, epochs.into_values().collect()))
                .collect()
        });
        Recorded {
            train_epochs: log.train_epochs,
            train_metrics: train,
            valid_metrics: valid,
        }
    }
}

impl MetricLogger for FitRecorder {
    fn log(&mut self, update: MetricsUpdate, epoch: usize, split: &Split) {
        let mut log = self.lock();
        for numeric in update.entries_numeric {
            let Some(entry) = numeric.numeric_entry else {
                continue;
            };
            let Some(name) = log.names.get(&numeric.entry.metric_id).cloned() else {
                continue;
            };
            log.entries
                .entry((name, split.clone(), epoch))
                .or_default()
                .push(entry);
        }
    }

    fn read_numeric(
        &mut self,
        name: &str,
        epoch: usize,
        split: &Split,
    ) -> Result<Vec<NumericEntry>, String> {
        let log = self.lock();
        Ok(log
            .entries
            .get(&(name.to_string(), split.clone(), epoch))
            .cloned()
            .unwrap_or_default())
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        self.lock()
            .names
            .insert(definition.metric_id, definition.name.to_string());
    }

    fn log_epoch_summary(&mut self, summary: EpochSummary) {
        if matches!(summary.split, Split::Train) {
            self.lock().train_epochs += 1;
        }
    }
}

/// A burn-train renderer that draws nothing: no terminal UI, no progress lines, no summary
/// printed at the end. A fit inside an active-learning loop (or a test) stays quiet; the
/// metrics are in the fit's report.
pub(crate) struct SilentRenderer;

impl MetricsRendererTraining for SilentRenderer {
    fn update_train(&mut self, _state: MetricState) {}

    fn update_valid(&mut self, _state: MetricState) {}

    fn on_train_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

impl MetricsRendererEvaluation for SilentRenderer {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}

    fn on_test_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

impl TrainingProgressLogger for SilentRenderer {
    fn start(
        &mut self,
        _total_epochs: usize,
        _starting_epoch: usize,
        _total_items: Option<usize>,
        _label: Option<&str>,
    ) {
    }

    fn update_epoch(&mut self, _epoch: usize) {}

    fn start_split(&mut self, _split: &str, _total_items: usize) {}

    fn update_split(&mut self, _items_processed: usize) {}

    fn end_split(&mut self) {}

    fn end(&mut self) {}

    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for SilentRenderer {
    fn start_global_progress(&mut self, _total_tests: usize) {}

    fn start_test(&mut self, _name: &str, _total_items: usize) {}

    fn update_test_progress(&mut self, _items_processed: usize) {}

    fn end_test(&mut self) {}

    fn end_global_progress(&mut self) {}

    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRenderer for SilentRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, _definition: MetricDefinition) {}
}

/// The validation loader of a fit without a validation set: burn-train always runs a
/// validation split after each training split, and this one holds no item.
pub(crate) struct NoValidation;

impl<O: 'static> DataLoader<O> for NoValidation {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<O> + 'a> {
        Box::new(NoItems(PhantomData))
    }

    fn num_items(&self) -> usize {
        0
    }

    fn to_device(&self, _device: &Device) -> Arc<dyn DataLoader<O>> {
        Arc::new(NoValidation)
    }

    fn slice(&self, _start: usize, _end: usize) -> Arc<dyn DataLoader<O>> {
        Arc::new(NoValidation)
    }
}

/// The iterator of [`NoValidation`].
struct NoItems<O>(PhantomData<fn() -> O>);

impl<O> Iterator for NoItems<O> {
    type Item = Result<O, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        None
    }
}

impl<O> DataLoaderIterator<O> for NoItems<O> {
    fn progress(&self) -> Progress {
        Progress::new(0, 0, None)
    }
}

#[cfg(test)]
mod tests {
    use burn::train::metric::store::NumericMetricUpdate;
    use burn::train::metric::{LossMetric, MetricEntry, SerializedEntry};

    use super::*;

    fn update(id: &MetricId, entry: NumericEntry) -> MetricsUpdate {
        let serialized = SerializedEntry::new(String::new(), entry.serialize());
        MetricsUpdate::new(
            Vec::new(),
            vec![NumericMetricUpdate::new(
                MetricEntry::new(id.clone(), serialized),
                Some(entry),
                None,
            )],
        )
    }

    #[test]
    fn records_each_epochs_final_value_and_counts_training_epochs() {
        let mut recorder = FitRecorder::default();
        let id = MetricId::new(Arc::new("Loss".to_string()));
        recorder.log_metric_definition(MetricDefinition::new(id.clone(), &LossMetric::new()));
        for (epoch, last) in [(1, 0.9), (2, 0.4)] {
            for split in [Split::Train, Split::Valid] {
                recorder.log(update(&id, NumericEntry::Value(1.5)), epoch, &split);
                recorder.log(update(&id, NumericEntry::Final(last)), epoch, &split);
                recorder.log_epoch_summary(EpochSummary::new(epoch, split));
            }
        }
        // What early stopping reads: the epoch's entries, the final one last.
        let entries = recorder
            .read_numeric("Loss", 2, &Split::Valid)
            .expect("readable");
        assert!(matches!(entries.last(), Some(NumericEntry::Final(v)) if *v == 0.4));
        assert!(
            recorder
                .read_numeric("Accuracy", 1, &Split::Train)
                .expect("readable")
                .is_empty()
        );

        let recorded = recorder.recorded();
        assert_eq!(
            recorded.train_epochs, 2,
            "validation epochs are not counted"
        );
        assert_eq!(recorded.train_metrics["Loss"], vec![0.9, 0.4]);
        assert_eq!(recorded.valid_metrics["Loss"], vec![0.9, 0.4]);
    }

    #[test]
    fn the_empty_validation_loader_yields_nothing() {
        let loader: Arc<dyn DataLoader<u8>> = Arc::new(NoValidation);
        assert_eq!(loader.num_items(), 0);
        assert!(loader.iter().next().is_none());
        assert_eq!(loader.iter().progress().items_total, 0);
    }
}
