//! Declared intent: `NetcanaryIntent` documents to statements (every problem named by
//! file, intent, statement index and field), and statements checked against policy, each
//! expectation worked out by hand from the manifests.

mod common;

use common::{cluster, pod};
use netcanary_objects::{Severity, load_intent_str};
use netcanary_policy::intent::{Expect, StatementCheck, check};
use netcanary_policy::{Direction, Tier};

/// Namespaces dev (env=dev) and prod (env=prod); prod/db (app=db) on 5432, dev/web,
/// prod/api. prod-db-ingress admits app=api of prod, and (the mistake) every namespace
/// labelled team=data, which dev carries too.
fn manifests() -> String {
    let mut yaml = String::from(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: dev, labels: {env: dev, team: data}}\n---\n\
         apiVersion: v1\nkind: Namespace\nmetadata: {name: prod, labels: {env: prod}}\n---\n\
         apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: db-ingress, namespace: prod}\n\
         spec:\n  podSelector: {matchLabels: {app: db}}\n  ingress:\n\
         \x20   - from: [{podSelector: {matchLabels: {app: api}}}]\n\
         \x20   - from: [{namespaceSelector: {matchLabels: {team: data}}}]\n\
         \x20     ports: [{port: 5432}]\n",
    );
    yaml.push_str(&pod("prod", "db", "app: db", "10.0.0.1", "- {containerPort: 5432}"));
    yaml.push_str(&pod("prod", "api", "app: api", "10.0.0.2", ""));
    yaml.push_str(&pod("dev", "web", "app: web", "10.0.1.1", ""));
    yaml
}

fn intent(statements: &str) -> String {
    format!(
        "apiVersion: netcanary.io/v1alpha1\nkind: NetcanaryIntent\nmetadata: {{name: isolation}}\nspec:\n  statements:\n{statements}"
    )
}

const DEV_NEVER_DB: &str = "    - name: dev-never-db\n      from: {namespaceSelector: {matchLabels: {env: dev}}}\n      to: {namespaceSelector: {matchLabels: {env: prod}}, podSelector: {matchLabels: {app: db}}}\n      ports: [{port: 5432, protocol: TCP}]\n      expect: deny\n";

fn checks(statements: &str) -> Vec<StatementCheck> {
    let loaded = load_intent_str("intent.yaml", &intent(statements));
    assert!(loaded.diagnostics.is_empty(), "unexpected diagnostics: {:#?}", loaded.diagnostics);
    check(&cluster(&manifests()), &loaded.statements)
}

#[test]
fn a_policy_that_allows_what_intent_forbids_is_a_violation_naming_the_rule() {
    let checks = checks(DEV_NEVER_DB);
    let [check] = checks.as_slice() else { panic!("one statement: {checks:#?}") };
    assert_eq!(check.statement.id(), "isolation/dev-never-db");
    assert_eq!(check.statement.expect, Expect::Deny);
    assert_eq!((check.sources, check.destinations, check.pairs), (1, 1, 1));
    let [violation] = check.violations.as_slice() else { panic!("one violation: {:#?}", check.violations) };
    assert_eq!((violation.from.as_str(), violation.to.as_str()), ("dev/web", "prod/db"));
    assert_eq!(violation.port.to_string(), "5432/TCP");
    assert!(violation.policy_allows);
    // dev/web's egress is open (no policy in dev), prod/db's ingress is allowed by the
    // second rule of db-ingress only.
    let rules: Vec<(Direction, Tier, Option<&str>)> =
        violation.responsible.iter().map(|r| (r.direction, r.tier, r.rule.as_deref())).collect();
    assert_eq!(
        rules,
        [
            (Direction::Egress, Tier::Default, None),
            (Direction::Ingress, Tier::NetworkPolicy, Some("prod/db-ingress ingress[1]")),
        ]
    );
    assert_eq!(violation.responsible[0].says, "no policy isolates dev/web for egress: allowed by default");
}

#[test]
fn a_policy_that_denies_what_intent_requires_is_a_violation_naming_the_isolation() {
    // prod/api reaches prod/db on any port (ingress[0]), but only 5432 is open to dev:
    // dev/web on 80 is denied by db-ingress's isolation.
    let statements = "    - from: {namespaceSelector: {}}\n      to: {podSelector: {matchLabels: {app: db}}}\n      ports: [{port: 80}]\n      expect: allow\n";
    let checks = checks(statements);
    let check = &checks[0];
    assert_eq!(check.statement.id(), "isolation[0]", "an unnamed statement is named by its index");
    assert_eq!((check.sources, check.destinations, check.pairs), (3, 1, 2), "prod/db to itself is left out");
    let [violation] = check.violations.as_slice() else { panic!("one violation: {:#?}", check.violations) };
    assert_eq!(
        (violation.from.as_str(), violation.to.as_str(), violation.policy_allows),
        ("dev/web", "prod/db", false)
    );
    let [responsible] = violation.responsible.as_slice() else { panic!("{:#?}", violation.responsible) };
    assert_eq!(
        (responsible.direction, responsible.tier, responsible.rule.as_deref()),
        (Direction::Ingress, Tier::NetworkPolicy, None)
    );
    assert_eq!(responsible.says, "prod/db is isolated for ingress by prod/db-ingress and no rule of them allows this");
}

#[test]
fn a_statement_that_holds_has_no_violation_and_one_matching_nothing_says_so() {
    let statements = format!(
        "{}{}",
        "    - name: api-reaches-db\n      from: {podSelector: {matchLabels: {app: api}}}\n      to: {podSelector: {matchLabels: {app: db}}}\n      ports: [{port: 5432}]\n      expect: allow\n",
        "    - name: nobody\n      from: {namespaceSelector: {matchLabels: {env: staging}}}\n      to: {}\n      ports: [{port: 5432}]\n      expect: deny\n",
    );
    let checks = checks(&statements);
    assert_eq!(checks.len(), 2);
    assert!(checks[0].violations.is_empty() && checks[0].pairs == 1 && !checks[0].matches_nothing());
    assert_eq!((checks[1].sources, checks[1].destinations), (0, 3), "no namespace has env=staging");
    assert!(checks[1].matches_nothing(), "a statement without sources checks nothing, and says so");
}

/// The diagnostics of an intent document, as `severity field: message`.
fn problems(statements: &str) -> Vec<String> {
    let loaded = load_intent_str("intent.yaml", &intent(statements));
    loaded
        .diagnostics
        .iter()
        .map(|d| {
            assert_eq!(d.file, "intent.yaml");
            assert_eq!(d.object.as_deref(), Some("NetcanaryIntent isolation"));
            format!("{} {}: {}", d.severity.as_str(), d.field.as_deref().unwrap_or_default(), d.message)
        })
        .collect()
}

#[test]
fn every_problem_names_the_statement_and_the_field() {
    let bad = "    - from: {namespaceSelecter: {}}\n      to: {}\n      ports: [{port: 5432}]\n      expect: deny\n";
    let found = problems(bad);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        found[0],
        "error spec.statements[0].from.namespaceSelecter: unknown field `namespaceSelecter`, expected `namespaceSelector` or `podSelector`",
        "a misspelt selector is refused, not read as 'every pod'"
    );

    let bad = "    - from: {}\n      to: {podSelector: {matchLabels: {app: \"a b\"}}}\n      ports: [{port: http}, {port: 53, protocol: udp}, {port: 70000}]\n      expect: never\n";
    let found = problems(bad);
    let fields: Vec<&str> = found.iter().map(|p| p.split(':').next().unwrap()).collect();
    assert_eq!(
        fields,
        [
            "error spec.statements[0].expect",
            "error spec.statements[0].to.podSelector.matchLabels[\"app\"]",
            "error spec.statements[0].ports[0].port",
            "error spec.statements[0].ports[1].protocol",
            "error spec.statements[0].ports[2].port",
        ],
        "{found:#?}"
    );
    assert!(found[0].ends_with("unsupported value \"never\": use \"allow\" or \"deny\""));
    assert!(found[2].contains("intent does not take named ports"));

    let found = problems("    - to: {}\n      expect: deny\n");
    assert_eq!(
        found,
        [
            "error spec.statements[0].from: is required: give namespaceSelector and/or podSelector ({} selects every pod)",
            "error spec.statements[0].ports: must list at least one port, such as {port: 5432, protocol: TCP}",
        ]
    );
}

#[test]
fn statement_names_are_unique_and_an_intent_file_holds_intent_only() {
    let twice = format!("{DEV_NEVER_DB}{DEV_NEVER_DB}");
    assert_eq!(
        problems(&twice),
        ["error spec.statements[1].name: \"dev-never-db\" is the name of an earlier statement"]
    );
    let loaded = load_intent_str("intent.yaml", &format!("{}\n---\n{}", intent(DEV_NEVER_DB), manifests()));
    let errors: Vec<String> =
        loaded.diagnostics.iter().filter(|d| d.severity == Severity::Error).map(ToString::to_string).collect();
    assert_eq!(errors.len(), 6, "each of the 6 manifest documents is refused: {errors:#?}");
    assert_eq!(
        errors[0],
        "error: intent.yaml: document 2: kind: not intent: an intent file holds netcanary.io/v1alpha1 NetcanaryIntent objects only (this is v1 Namespace)"
    );
    assert_eq!(loaded.statements.len(), 1, "the intent itself is still read");
}
