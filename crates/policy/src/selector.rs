//! Label selectors, exactly as `metav1.LabelSelector` matches: `matchLabels` and every
//! `matchExpressions` requirement must hold; an empty selector matches everything.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Labels of a pod or namespace.
pub type Labels = BTreeMap<String, String>;

/// The label that the API server puts on every namespace (and that policies use to name one).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A validated label selector.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

/// One condition of a selector. `matchLabels` entries become `In` with one value,
/// as upstream's `LabelSelectorAsSelector` does.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: BTreeSet<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Operator {
    /// Parses the API's spelling; anything else is rejected by the API server too.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "In" => Some(Self::In),
            "NotIn" => Some(Self::NotIn),
            "Exists" => Some(Self::Exists),
            "DoesNotExist" => Some(Self::DoesNotExist),
            _ => None,
        }
    }
}

impl Selector {
    /// The selector that matches everything (`{}`).
    pub fn everything() -> Self {
        Self::default()
    }

    /// A selector from already-validated requirements.
    pub fn new(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort();
        requirements.dedup();
        Self { requirements }
    }

    /// A selector made only of `matchLabels`.
    pub fn from_labels<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self::new(
            pairs
                .into_iter()
                .map(|(k, v)| Requirement {
                    key: k.to_string(),
                    operator: Operator::In,
                    values: BTreeSet::from([v.to_string()]),
                })
                .collect(),
        )
    }

    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

impl Requirement {
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            // As upstream: NotIn also matches when the key is absent.
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

impl fmt::Display for Selector {
    /// kubectl's selector syntax: `app=api,tier in (a,b),!legacy`; `{}` for everything.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.requirements.is_empty() {
            return f.write_str("{}");
        }
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values = || self.values.iter().cloned().collect::<Vec<_>>().join(",");
        match self.operator {
            Operator::In if self.values.len() == 1 => write!(f, "{}={}", self.key, values()),
            Operator::In => write!(f, "{} in ({})", self.key, values()),
            Operator::NotIn => write!(f, "{} notin ({})", self.key, values()),
            Operator::Exists => write!(f, "{}", self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
        }
    }
}

/// Why a label key or value is not valid, in the API server's words.
pub fn label_key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && let Some(problem) = dns_subdomain_problem(prefix)
    {
        return Some(format!("prefix {prefix:?} {problem}"));
    }
    if name.is_empty() {
        return Some("name part must be non-empty".into());
    }
    label_value_problem(name).map(|p| format!("name part {p}"))
}

/// Label values: at most 63 characters, alphanumerics with `-`, `_` or `.` inside.
pub fn label_value_problem(value: &str) -> Option<String> {
    if value.len() > 63 {
        return Some("must be no more than 63 characters".into());
    }
    if value.is_empty() {
        return None;
    }
    let bytes = value.as_bytes();
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Some("must begin and end with an alphanumeric character".into());
    }
    if !bytes.iter().all(|&b| alnum(b) || b == b'-' || b == b'_' || b == b'.') {
        return Some("may contain only alphanumerics, '-', '_' and '.'".into());
    }
    None
}

fn dns_subdomain_problem(s: &str) -> Option<String> {
    if s.is_empty() || s.len() > 253 {
        return Some("must be a DNS subdomain of 1 to 253 characters".into());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if s.split('.').all(label_ok) {
        None
    } else {
        Some("must be a lower-case DNS subdomain (a-z, 0-9, '-', '.')".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn req(key: &str, operator: Operator, values: &[&str]) -> Requirement {
        Requirement { key: key.into(), operator, values: values.iter().map(|v| v.to_string()).collect() }
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(Selector::everything().matches(&labels(&[])));
        assert!(Selector::everything().matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn operators_follow_upstream() {
        let pod = labels(&[("app", "api"), ("tier", "web")]);
        let cases = [
            (req("app", Operator::In, &["api", "db"]), true),
            (req("app", Operator::In, &["db"]), false),
            (req("missing", Operator::In, &["x"]), false),
            (req("app", Operator::NotIn, &["db"]), true),
            (req("app", Operator::NotIn, &["api"]), false),
            (req("missing", Operator::NotIn, &["x"]), true),
            (req("tier", Operator::Exists, &[]), true),
            (req("missing", Operator::Exists, &[]), false),
            (req("missing", Operator::DoesNotExist, &[]), true),
            (req("app", Operator::DoesNotExist, &[]), false),
        ];
        for (requirement, want) in cases {
            assert_eq!(requirement.matches(&pod), want, "{requirement}");
        }
    }

    #[test]
    fn all_requirements_must_hold() {
        let s = Selector::new(vec![req("app", Operator::In, &["api"]), req("tier", Operator::NotIn, &["web"])]);
        assert!(!s.matches(&labels(&[("app", "api"), ("tier", "web")])));
        assert!(s.matches(&labels(&[("app", "api")])));
        assert_eq!(s.to_string(), "app=api,tier notin (web)");
    }

    #[test]
    fn label_syntax() {
        assert_eq!(label_key_problem("app.kubernetes.io/name"), None);
        assert!(label_key_problem("Bad_Prefix/name").is_some());
        assert!(label_key_problem("a/").is_some());
        assert!(label_value_problem("-x").is_some());
        assert!(label_value_problem(&"x".repeat(64)).is_some());
        assert_eq!(label_value_problem(""), None);
    }
}
