//! Verdicts: what policy says about one connection, per direction, with the evidence.

use std::fmt;

use crate::cluster_policy::{Action, ClusterRuleRef};
use crate::model::{Direction, Endpoint, EndpointKind};
use crate::port::PortProto;

/// The layer of policy that decided a direction, in the order they are consulted: Admin
/// (cluster policies), NetworkPolicy, Baseline (cluster policies), Default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// A cluster policy of the Admin tier (or an AdminNetworkPolicy) accepted or denied.
    Admin,
    /// A NetworkPolicy isolates the pod in this direction: only its rules can allow.
    NetworkPolicy,
    /// A cluster policy of the Baseline tier (or the BaselineAdminNetworkPolicy) accepted or
    /// denied.
    Baseline,
    /// No tier decided (or pod policy does not govern the pod): allowed by default.
    Default,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Admin => "Admin",
            Tier::NetworkPolicy => "NetworkPolicy",
            Tier::Baseline => "Baseline",
            Tier::Default => "Default",
        }
    }
}

/// What decided a direction: the tier, the rule (none when a NetworkPolicy isolates and no
/// rule allows, or by default) and its action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub tier: Tier,
    /// `ClusterNetworkPolicy/x egress "allow-dns"`, `ns/np ingress[0]`.
    pub rule: Option<String>,
    pub action: Action,
}

/// A cluster policy rule that matched (or, by domain name, may match), with what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterHit {
    pub rule: ClusterRuleRef,
    pub action: Action,
    pub says: String,
}

/// One cluster tier (Admin or Baseline) as it was walked for a direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierStep {
    pub tier: Tier,
    /// The policies of the tier whose subject is the pod, in the order consulted.
    pub policies: Vec<String>,
    /// Rules consulted before the deciding one that did not match, and why.
    pub misses: Vec<(ClusterRuleRef, String)>,
    /// The first matching rule; `None` when no rule of the tier matched.
    pub hit: Option<ClusterHit>,
    /// Rules whose domain names might name the far end: no cluster object says.
    pub maybe: Vec<ClusterHit>,
    /// Policies of equal priority that match with different actions: which one applies is
    /// the implementation's choice.
    pub tie: Option<String>,
}

/// A rule of a policy, named as `namespace/name` plus direction and position.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleRef {
    pub policy: String,
    pub direction: Direction,
    /// Zero-based position in the policy's `ingress` or `egress` list.
    pub index: usize,
}

impl fmt::Display for RuleRef {
    /// `production/allow-api-to-db ingress[0]`, the way `kubectl explain` paths read.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}[{}]", self.policy, self.direction, self.index)
    }
}

/// A rule that allows the connection, with what it says in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleHit {
    pub rule: RuleRef,
    /// `from pods app=api in namespace prod, on 5432/TCP`.
    pub says: String,
}

/// A rule that was considered and did not allow the connection, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleMiss {
    pub rule: RuleRef,
    pub reason: String,
}

/// What one side of a connection (the source's egress or the destination's ingress) says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectionVerdict {
    pub direction: Direction,
    pub allowed: bool,
    /// Some policy selecting the pod has this direction in its policyTypes.
    pub isolated: bool,
    /// The tier that decided (the same as `decision.tier`).
    pub tier: Tier,
    pub decision: Decision,
    /// The cluster tiers consulted, in order (none when no cluster policy selects the pod).
    pub steps: Vec<TierStep>,
    /// Why the answer is not known from cluster objects (a rule naming domains could decide
    /// either way); `allowed` is then the answer if no domain name matches.
    pub unknown: Option<String>,
    /// Why the answer is the implementation's choice (cluster policies of equal priority).
    pub tie: Option<String>,
    /// The policies that select the pod for this direction, as `namespace/name`.
    pub policies: Vec<String>,
    /// Every rule that allows the connection (all of them, not just the first).
    pub allowed_by: Vec<RuleHit>,
    /// Rules of the selecting policies that did not allow it, with the reason.
    pub misses: Vec<RuleMiss>,
    /// Facts a reader needs: not governed by pod policy, no rules, no IP.
    pub notes: Vec<Note>,
}

/// A fact about one side of a connection that a reader needs. A note names no endpoint:
/// a verdict holds for every member of its endpoints' classes, so whoever shows it for a
/// pair names that pair's endpoints ([`DirectionVerdict::describe_notes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Note {
    /// The side's own endpoint (the source for egress, the destination for ingress) is
    /// outside the cluster: pod policy does not govern it.
    OutsideCluster,
    /// The side's own endpoint uses the host network: pod policy does not govern it.
    HostNetwork,
    /// The policies that select the side's own endpoint have no rules for its direction.
    NoRules,
    /// An ipBlock of a selecting policy could have matched the far end, which has no IP.
    FarEndHasNoIp,
}

impl Note {
    /// The note in words, for the `direction` side of a connection whose own endpoint is
    /// `own` and whose far end is `far`.
    pub fn describe(self, direction: Direction, own: &Endpoint, far: &Endpoint) -> String {
        match self {
            Note::OutsideCluster => {
                format!("{} is outside the cluster: pod policy does not govern its {direction}", own.id)
            }
            Note::HostNetwork => {
                format!("{} uses the host network: pod policy does not govern its {direction}", own.id)
            }
            Note::NoRules => format!("the selecting policies have no {direction} rules: all {direction} is denied"),
            Note::FarEndHasNoIp => match far.kind {
                EndpointKind::Workload(_) => {
                    format!("{} is a workload template with no IP yet, so no ipBlock can match it", far.id)
                }
                _ => format!("{} has no IP, so no ipBlock can match it", far.id),
            },
        }
    }
}

impl DirectionVerdict {
    /// The notes in words, for the connection from `from` to `to`: egress notes are about
    /// the source, ingress notes about the destination.
    pub fn describe_notes(&self, from: &Endpoint, to: &Endpoint) -> Vec<String> {
        let (own, far) = match self.direction {
            Direction::Egress => (from, to),
            Direction::Ingress => (to, from),
        };
        self.notes.iter().map(|note| note.describe(self.direction, own, far)).collect()
    }

    /// The cluster tiers of [`steps`](Self::steps) that were really consulted: Admin
    /// always, Baseline only when neither Admin decided nor a NetworkPolicy isolates (the
    /// decision is then Baseline's or the default). A Baseline rule that matches where
    /// Baseline was not consulted decided nothing and was not walked through.
    pub fn consulted_steps(&self) -> impl Iterator<Item = &TierStep> {
        let baseline_consulted = matches!(self.decision.tier, Tier::Baseline | Tier::Default);
        self.steps.iter().filter(move |step| step.tier == Tier::Admin || baseline_consulted)
    }

    pub(crate) fn by_default(direction: Direction, note: Option<Note>) -> Self {
        Self {
            direction,
            allowed: true,
            isolated: false,
            tier: Tier::Default,
            decision: Decision { tier: Tier::Default, rule: None, action: Action::Accept },
            steps: Vec::new(),
            unknown: None,
            tie: None,
            policies: Vec::new(),
            allowed_by: Vec::new(),
            misses: Vec::new(),
            notes: note.into_iter().collect(),
        }
    }
}

/// What policy says about `from` connecting to `to` on `port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub from: String,
    pub to: String,
    pub port: PortProto,
    /// The source's egress AND the destination's ingress.
    pub allowed: bool,
    pub egress: DirectionVerdict,
    pub ingress: DirectionVerdict,
    /// A pod reaching its own IP: the answer is policy's, but CNIs differ in practice and
    /// upstream conformance does not check it, so it is implementation-defined.
    pub self_pair: bool,
    /// Either end uses the host network: the NetworkPolicy spec leaves such traffic
    /// undefined, so the answer (pod policy does not govern that end) is
    /// implementation-defined too.
    pub host_network: bool,
}

impl Verdict {
    /// Whether CNIs may differ from policy's answer here without being wrong: a self pair,
    /// or a host-network end.
    pub fn implementation_defined(&self) -> bool {
        self.self_pair || self.host_network || self.egress.tie.is_some() || self.ingress.tie.is_some()
    }

    /// Why policy's answer is not known (a rule naming domains might decide it), unless a
    /// direction that is known denies anyway.
    pub fn unknown(&self) -> Option<&str> {
        let known_deny = [&self.egress, &self.ingress].iter().any(|d| d.unknown.is_none() && !d.allowed);
        if known_deny {
            return None;
        }
        self.egress.unknown.as_deref().or(self.ingress.unknown.as_deref())
    }

    /// Why policy's answer is not known: a rule naming domains might decide it
    /// ([`Self::unknown`]), or cluster policies of equal priority disagree (the
    /// implementation's choice).
    pub fn not_known(&self) -> Option<&str> {
        self.unknown().or(self.egress.tie.as_deref()).or(self.ingress.tie.as_deref())
    }

    /// The direction that decided a denial (egress first, as the packet meets it first).
    pub fn denied_by(&self) -> Option<&DirectionVerdict> {
        [&self.egress, &self.ingress].into_iter().find(|d| !d.allowed)
    }
}
