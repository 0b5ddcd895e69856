//! What a plan costs: the probe pods it starts and the wall time their probes take.
//! Creating, scheduling and starting a pod takes seconds and a slot on a node, while one more
//! probe from a pod that runs anyway takes milliseconds, so the planner spends its budget in
//! pods and reuses the pods it has, up to the probes a source pod can send within a round's
//! time (see [`crate::wall_time`]).
//!
//! A class can have two probe pods: a source (it sends probes) and a target (it listens).
//! The enforcement canary's two pods are outside the budget: every run has them.

/// What a probe would exceed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exceeded {
    /// The probe pods it needs do not fit.
    Pods,
    /// Its source pod sends as many probes as a round's time allows.
    Time,
}

/// The probe pods a plan has started so far, by class and role, and the probes each source
/// sends, against their limits.
#[derive(Clone, Debug)]
pub(crate) struct Budget {
    limit: usize,
    source: Vec<bool>,
    target: Vec<bool>,
    /// The classes with a source pod, and with a target pod, in the order they got it.
    sources: Vec<usize>,
    targets: Vec<usize>,
    /// Per class, the probes its source pod sends; at most `per_source`.
    sent: Vec<usize>,
    per_source: usize,
    /// The probes one probe to a target pod becomes (one per path); others are one.
    per_target_probe: usize,
    /// Whether something was left out because the pods it needed did not fit.
    exhausted: bool,
    /// Probes left out because their source pod had no time left.
    out_of_time: usize,
}

impl Budget {
    /// A budget of `limit` pods over `classes` classes, each source pod sending at most
    /// `per_source` probes, a probe to a target pod counting `per_target_probe` times.
    pub(crate) fn new(limit: usize, classes: usize, per_source: usize, per_target_probe: usize) -> Self {
        Self {
            limit,
            source: vec![false; classes],
            target: vec![false; classes],
            sources: Vec::new(),
            targets: Vec::new(),
            sent: vec![0; classes],
            per_source,
            per_target_probe: per_target_probe.max(1),
            exhausted: false,
            out_of_time: 0,
        }
    }

    /// New pods a probe from `source` to `target` (a class, or something that is no
    /// probe pod: DNS, an address outside the cluster) needs.
    pub(crate) fn cost(&self, source: usize, target: Option<usize>) -> usize {
        usize::from(!self.source[source]) + target.map_or(0, |t| usize::from(!self.target[t]))
    }

    /// Whether `source`'s pod has time for one more probe in a round, to a target pod or
    /// to something else (DNS, an address outside the cluster).
    pub(crate) fn has_time(&self, source: usize, to_target: bool) -> bool {
        self.sent[source] + self.probes(to_target) <= self.per_source
    }

    fn probes(&self, to_target: bool) -> usize {
        if to_target { self.per_target_probe } else { 1 }
    }

    /// Pods that may still be started.
    pub(crate) fn left(&self) -> usize {
        self.limit.saturating_sub(self.used())
    }

    pub(crate) fn used(&self) -> usize {
        self.sources.len() + self.targets.len()
    }

    /// Takes the pods and the time a probe needs; nothing is taken when they do not fit.
    pub(crate) fn take(&mut self, source: usize, target: Option<usize>) -> Result<(), Exceeded> {
        if self.cost(source, target) > self.left() {
            self.exhausted = true;
            return Err(Exceeded::Pods);
        }
        if !self.has_time(source, target.is_some()) {
            self.out_of_time += 1;
            return Err(Exceeded::Time);
        }
        self.sent[source] += self.probes(target.is_some());
        if !self.source[source] {
            self.source[source] = true;
            self.sources.push(source);
        }
        if let Some(t) = target.filter(|&t| !self.target[t]) {
            self.target[t] = true;
            self.targets.push(t);
        }
        Ok(())
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

    /// Records that a probe was left out for want of its source pod's time without trying
    /// to take it.
    pub(crate) fn left_out_of_time(&mut self) {
        self.out_of_time += 1;
    }

    /// Probes left out because their source pod had no time left, and the most a source
    /// pod may send.
    pub(crate) fn out_of_time(&self) -> (usize, usize) {
        (self.out_of_time, self.per_source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_pays_once_per_role_and_the_limit_holds() {
        let mut budget = Budget::new(3, 4, 100, 1);
        assert_eq!(budget.cost(0, Some(1)), 2);
        assert_eq!(budget.take(0, Some(1)), Ok(()));
        assert_eq!(budget.cost(0, Some(1)), 0, "both pods exist");
        assert_eq!(budget.cost(1, Some(0)), 2, "a class's source and target pods are two pods");
        assert_eq!(budget.take(0, None), Ok(()), "DNS from an existing source costs nothing");
        assert_eq!(budget.take(2, Some(3)), Err(Exceeded::Pods), "two more pods do not fit in one");
        assert!(budget.exhausted());
        assert_eq!((budget.used(), budget.left()), (2, 1), "a refused probe takes nothing");
        assert_eq!(budget.take(2, Some(1)), Ok(()));
        assert_eq!((budget.sources(), budget.targets()), (&[0, 2][..], &[1][..]));
        assert!(budget.has_source(2) && !budget.has_target(2));
    }

    #[test]
    fn a_source_pod_sends_no_more_probes_than_a_round_has_time_for() {
        // Four probes a round per source pod; a probe to a target pod goes by two paths.
        let mut budget = Budget::new(10, 3, 4, 2);
        assert_eq!(budget.take(0, Some(1)), Ok(()));
        assert!(budget.has_time(0, true) && budget.has_time(0, false));
        assert_eq!(budget.take(0, None), Ok(()), "DNS is one probe");
        assert!(!budget.has_time(0, true), "3 + 2 probes exceed 4");
        assert_eq!(budget.take(0, Some(2)), Err(Exceeded::Time));
        assert_eq!(budget.used(), 2, "a refused probe takes no pod");
        assert_eq!(budget.take(0, None), Ok(()), "one more DNS probe fits");
        assert_eq!(budget.take(1, Some(2)), Ok(()), "another source pod has its own time");
        assert_eq!(budget.out_of_time(), (1, 4));
    }
}
