//! How a plan travels in a probe pod's environment, which needs no ConfigMap or volume.
//!
//! Linux limits one environment string (`NAME=value`) to 128 KiB (`MAX_ARG_STRLEN`): a pod
//! whose variable is longer cannot start at all, and a source with some 2,000 probes writes
//! a longer plan. So a long plan is cut into parts of at most [`PART_BYTES`]: the first in
//! [`PLAN_VAR`], as a short plan always was (an agent or a plan that knows no parts works as
//! before), the others in `NETCANARY_PLAN_JSON_1`, `_2`, …, and their count in [`PARTS_VAR`],
//! so that the agent tells a lost part from a short plan. The whole is capped at
//! [`MAX_PLAN_BYTES`], well below what an execve (2 MiB for arguments and environment
//! together under the usual 8 MiB stack limit) and a pod object (1.5 MiB in etcd) can hold.

/// The variable that holds a plan, or its first part.
pub const PLAN_VAR: &str = "NETCANARY_PLAN_JSON";
/// How many parts a split plan has (absent: one).
pub const PARTS_VAR: &str = "NETCANARY_PLAN_JSON_PARTS";
/// The most bytes of plan in one variable: 96 KiB leaves room under 128 KiB for the name.
pub const PART_BYTES: usize = 96 * 1024;
/// The most bytes of plan one pod carries, in all its parts (about 12,000 probes).
pub const MAX_PLAN_BYTES: usize = 8 * PART_BYTES;

/// A plan too long for one pod's environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the plan is {bytes} bytes, more than the {max} bytes a probe pod's environment may carry; lower --max-probes \
     so that each source has fewer probes"
)]
pub struct PlanTooLong {
    pub bytes: usize,
    pub max: usize,
}

/// A split plan that cannot be put together again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error("{PARTS_VAR}={0:?} is not a number of parts from 1 to {max}", max = MAX_PLAN_BYTES / PART_BYTES)]
    BadCount(String),
    #[error("{PARTS_VAR} says the plan has {parts} parts, but {name} is not set")]
    MissingPart { parts: usize, name: String },
}

/// The name of the variable holding part `index` (0 is [`PLAN_VAR`] itself).
pub fn part_var(index: usize) -> String {
    if index == 0 { PLAN_VAR.to_string() } else { format!("{PLAN_VAR}_{index}") }
}

/// The environment variables, as (name, value), that carry `json`: one variable when it fits,
/// else its parts and their count.
pub fn split(json: &str) -> Result<Vec<(String, String)>, PlanTooLong> {
    if json.len() > MAX_PLAN_BYTES {
        return Err(PlanTooLong { bytes: json.len(), max: MAX_PLAN_BYTES });
    }
    let mut parts = Vec::new();
    let mut rest = json;
    while rest.len() > PART_BYTES {
        // Cut at a character boundary: each value must be valid UTF-8 on its own.
        let mut cut = PART_BYTES;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (part, tail) = rest.split_at(cut);
        parts.push(part);
        rest = tail;
    }
    parts.push(rest);
    let mut vars: Vec<(String, String)> =
        parts.iter().enumerate().map(|(index, part)| (part_var(index), (*part).to_string())).collect();
    if vars.len() > 1 {
        vars.push((PARTS_VAR.to_string(), vars.len().to_string()));
    }
    Ok(vars)
}

/// The whole plan from its first part and the environment (`var` reads one variable).
pub fn join(first: &str, var: impl Fn(&str) -> Option<String>) -> Result<String, JoinError> {
    let Some(count) = var(PARTS_VAR) else { return Ok(first.to_string()) };
    let parts = count
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_PLAN_BYTES / PART_BYTES).contains(n))
        .ok_or_else(|| JoinError::BadCount(count.clone()))?;
    let mut json = String::with_capacity(parts * PART_BYTES);
    json.push_str(first);
    for index in 1..parts {
        let name = part_var(index);
        let part = var(&name).ok_or_else(|| JoinError::MissingPart { parts, name: name.clone() })?;
        json.push_str(&part);
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(String, String)]) -> impl Fn(&str) -> Option<String> + '_ {
        move |name| vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn a_short_plan_is_one_variable_as_before() {
        let vars = split(r#"{"timeout_ms":1000,"probes":[]}"#).unwrap();
        assert_eq!(vars, [("NETCANARY_PLAN_JSON".to_string(), r#"{"timeout_ms":1000,"probes":[]}"#.to_string())]);
        assert_eq!(join(&vars[0].1, env(&vars)).unwrap(), r#"{"timeout_ms":1000,"probes":[]}"#);
    }

    #[test]
    fn a_long_plan_is_split_under_the_kernel_limit_and_joined_whole() {
        // Multi-byte characters straddle the cuts: every part must still be valid text.
        let json: String = "é".repeat(PART_BYTES) + "tail";
        let vars = split(&json).unwrap();
        let names: Vec<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["NETCANARY_PLAN_JSON", "NETCANARY_PLAN_JSON_1", "NETCANARY_PLAN_JSON_2", "NETCANARY_PLAN_JSON_PARTS"]
        );
        assert_eq!(vars[3].1, "3");
        for (name, value) in &vars {
            // MAX_ARG_STRLEN counts "NAME=value" and its NUL.
            assert!(name.len() + value.len() + 2 <= 128 * 1024, "{name} is {} bytes", value.len());
        }
        assert_eq!(join(&vars[0].1, env(&vars)).unwrap(), json);
    }

    #[test]
    fn a_plan_over_the_cap_is_refused_naming_its_size() {
        let err = split(&"x".repeat(MAX_PLAN_BYTES + 1)).unwrap_err();
        assert_eq!(err, PlanTooLong { bytes: MAX_PLAN_BYTES + 1, max: MAX_PLAN_BYTES });
        assert!(err.to_string().contains("--max-probes"), "{err}");
        assert_eq!(split(&"x".repeat(MAX_PLAN_BYTES)).unwrap().len(), MAX_PLAN_BYTES / PART_BYTES + 1);
    }

    #[test]
    fn a_lost_part_or_a_bad_count_is_an_error_not_a_shorter_plan() {
        let vars = HashMap::from([(PARTS_VAR.to_string(), "3".to_string()), (part_var(1), "b".to_string())]);
        let err = join("a", |name| vars.get(name).cloned()).unwrap_err();
        assert_eq!(err, JoinError::MissingPart { parts: 3, name: "NETCANARY_PLAN_JSON_2".into() });
        for count in ["0", "x", "99"] {
            let err = join("a", |name| (name == PARTS_VAR).then(|| count.to_string())).unwrap_err();
            assert_eq!(err, JoinError::BadCount(count.into()));
        }
    }
}
