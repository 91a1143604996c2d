//! The label set a relabelling works on, with the semantics of Prometheus' `labels.Builder`:
//! an empty value deletes a label, a missing label reads as empty, and a walk over the labels
//! sees the labels as they were when it started, untouched base labels first (sorted), then
//! the labels set since, in the order they were first set. `labelmap` depends on that order:
//! when two labels map to one name, the one visited last wins.

use std::collections::BTreeMap;

/// A label set being relabelled.
#[derive(Debug)]
pub(super) struct LabelBuilder {
    base: BTreeMap<String, String>,
    added: Vec<(String, String)>,
    deleted: Vec<String>,
}

impl LabelBuilder {
    /// Starts from `labels` (empty values are absent labels).
    pub(super) fn new(labels: &BTreeMap<String, String>) -> Self {
        let base = labels
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        LabelBuilder {
            base,
            added: Vec::new(),
            deleted: Vec::new(),
        }
    }

    /// The value of `name`, empty when it is absent.
    pub(super) fn get(&self, name: &str) -> &str {
        if let Some((_, value)) = self.added.iter().find(|(n, _)| n == name) {
            return value;
        }
        if self.deleted.iter().any(|n| n == name) {
            return "";
        }
        self.base.get(name).map_or("", String::as_str)
    }

    /// Sets `name` to `value`; an empty value deletes it.
    pub(super) fn set(&mut self, name: &str, value: &str) {
        if value.is_empty() {
            self.delete(name);
            return;
        }
        match self.added.iter_mut().find(|(n, _)| n == name) {
            Some((_, old)) => *old = value.to_string(),
            None => self.added.push((name.to_string(), value.to_string())),
        }
    }

    /// Deletes `name`.
    pub(super) fn delete(&mut self, name: &str) {
        self.added.retain(|(n, _)| n != name);
        self.deleted.push(name.to_string());
    }

    /// The labels in walk order (see the module doc), copied so the walk may change them.
    pub(super) fn snapshot(&self) -> Vec<(String, String)> {
        let base = self
            .base
            .iter()
            .filter(|(name, _)| !self.deleted.contains(name))
            .filter(|(name, _)| !self.added.iter().any(|(n, _)| n == *name))
            .map(|(name, value)| (name.clone(), value.clone()));
        base.chain(self.added.iter().cloned()).collect()
    }

    /// The resulting label set.
    pub(super) fn into_labels(self) -> BTreeMap<String, String> {
        let mut labels = self.base;
        for name in &self.deleted {
            labels.remove(name);
        }
        labels.extend(self.added);
        labels
    }
}
