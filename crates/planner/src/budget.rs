//! What a plan costs: the probe pods it starts. Creating, scheduling and starting a pod
//! takes seconds and a slot on a node, while one more probe from a pod that runs anyway
//! takes milliseconds, so the planner spends its budget in pods and reuses the pods it has.
//!
//! A class can have two probe pods: a source (it sends probes) and a target (it listens).
//! The enforcement canary's two pods are outside the budget: every run has them.

/// The probe pods a plan has started so far, by class and role, against a limit.
#[derive(Clone, Debug)]
pub(crate) struct PodBudget {
    limit: usize,
    source: Vec<bool>,
    target: Vec<bool>,
    /// The classes with a source pod, and with a target pod, in the order they got it.
    sources: Vec<usize>,
    targets: Vec<usize>,
    /// Whether something was left out because the pods it needed did not fit.
    exhausted: bool,
}

impl PodBudget {
    pub(crate) fn new(limit: usize, classes: usize) -> Self {
        Self {
            limit,
            source: vec![false; classes],
            target: vec![false; classes],
            sources: Vec::new(),
            targets: Vec::new(),
            exhausted: false,
        }
    }

    /// New pods a probe from `source` to `target` (a class, or something that is no
    /// probe pod: DNS, an address outside the cluster) needs.
    pub(crate) fn cost(&self, source: usize, target: Option<usize>) -> usize {
        usize::from(!self.source[source]) + target.map_or(0, |t| usize::from(!self.target[t]))
    }

    /// Pods that may still be started.
    pub(crate) fn left(&self) -> usize {
        self.limit.saturating_sub(self.used())
    }

    pub(crate) fn used(&self) -> usize {
        self.sources.len() + self.targets.len()
    }

    /// Takes the pods a probe needs; false (and nothing taken) when they do not fit.
    pub(crate) fn take(&mut self, source: usize, target: Option<usize>) -> bool {
        if self.cost(source, target) > self.left() {
            self.exhausted = true;
            return false;
        }
        if !self.source[source] {
            self.source[source] = true;
            self.sources.push(source);
        }
        if let Some(t) = target.filter(|&t| !self.target[t]) {
            self.target[t] = true;
            self.targets.push(t);
        }
        true
    }

    pub(crate) fn has_source(&self, class: usize) -> bool {
        self.source[class]
    }

    pub(crate) fn has_target(&self, class: usize) -> bool {
        self.target[class]
    }

    /// The classes with a source pod, in the order they got it.
    pub(crate) fn sources(&self) -> &[usize] {
        &self.sources
    }

    pub(crate) fn targets(&self) -> &[usize] {
        &self.targets
    }

    pub(crate) fn exhausted(&self) -> bool {
        self.exhausted
    }

    /// Records that something was left out for want of pods without trying to take them.
    pub(crate) fn left_out(&mut self) {
        self.exhausted = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_pays_once_per_role_and_the_limit_holds() {
        let mut budget = PodBudget::new(3, 4);
        assert_eq!(budget.cost(0, Some(1)), 2);
        assert!(budget.take(0, Some(1)));
        assert_eq!(budget.cost(0, Some(1)), 0, "both pods exist");
        assert_eq!(budget.cost(1, Some(0)), 2, "a class's source and target pods are two pods");
        assert!(budget.take(0, None), "DNS from an existing source costs nothing");
        assert!(!budget.take(2, Some(3)), "two more pods do not fit in one");
        assert!(budget.exhausted());
        assert_eq!((budget.used(), budget.left()), (2, 1), "a refused probe takes nothing");
        assert!(budget.take(2, Some(1)));
        assert_eq!((budget.sources(), budget.targets()), (&[0, 2][..], &[1][..]));
        assert!(budget.has_source(2) && !budget.has_target(2));
    }
}
