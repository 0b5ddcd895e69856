//! Endpoints are shown as classes: pods that no policy can tell apart (the replicas of a
//! workload) share a row. The legend numbers the classes once for every block, so that a
//! column number means the same thing everywhere.

use std::collections::BTreeMap;

use netcanary_policy::Analysis;

/// One numbered row of the legend.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Shown as `#n`, counting from 1.
    pub number: usize,
    pub class: usize,
    /// The representative endpoint's id.
    pub name: String,
    /// How many endpoints of the analysis the class stands for.
    pub members: usize,
}

impl Entry {
    /// `prod/web-7d9f-abc (+2 like it)` for a class of three pods.
    pub fn label(&self) -> String {
        match self.members {
            0 | 1 => self.name.clone(),
            n => format!("{} (+{} like it)", self.name, n - 1),
        }
    }
}

/// The classes of every source and destination, numbered in the order of their names.
pub struct Legend {
    pub entries: Vec<Entry>,
    by_class: BTreeMap<usize, usize>,
}

impl Legend {
    pub fn new(analysis: &Analysis<'_>) -> Self {
        let endpoints = analysis.cluster().endpoints();
        let classes = analysis.index.classes();
        let shown = analysis.sources.iter().chain(analysis.blocks.iter().flat_map(|b| b.destinations.iter()));
        let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for &endpoint in shown {
            let list = members.entry(classes.class_of(endpoint)).or_default();
            if !list.contains(&endpoint) {
                list.push(endpoint);
            }
        }
        let mut entries: Vec<Entry> = members
            .into_iter()
            .map(|(class, list)| {
                let first =
                    list.iter().copied().min_by(|a, b| endpoints[*a].id.cmp(&endpoints[*b].id)).unwrap_or(list[0]);
                Entry { number: 0, class, name: endpoints[first].id.clone(), members: list.len() }
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        for (i, entry) in entries.iter_mut().enumerate() {
            entry.number = i + 1;
        }
        let by_class = entries.iter().enumerate().map(|(i, e)| (e.class, i)).collect();
        Self { entries, by_class }
    }

    /// The entries of the given endpoints' classes, each once, in legend order.
    pub fn entries_of(&self, analysis: &Analysis<'_>, endpoints: &[usize]) -> Vec<&Entry> {
        let classes = analysis.index.classes();
        let mut positions: Vec<usize> =
            endpoints.iter().filter_map(|&e| self.by_class.get(&classes.class_of(e)).copied()).collect();
        positions.sort_unstable();
        positions.dedup();
        positions.into_iter().map(|p| &self.entries[p]).collect()
    }
}
