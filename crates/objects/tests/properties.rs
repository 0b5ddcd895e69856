//! The loader never panics, whatever it is fed: arbitrary text, and policies with every
//! field mutated.

use netcanary_objects::Loader;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn loader_never_panics_on_arbitrary_text(text in ".{0,400}") {
        let mut loader = Loader::new("default");
        loader.load_str("fuzz.yaml", &text);
        loader.load_str("fuzz.json", &text);
        for d in loader.finish().diagnostics {
            prop_assert!(!d.message.is_empty());
        }
    }

    #[test]
    fn loader_never_panics_on_mutated_policies(
        selector_key in "[a-zA-Z./_-]{0,12}",
        operator in "[A-Za-z]{0,8}",
        port in prop_oneof![Just("80".to_string()), "[a-z0-9-]{0,16}", any::<i64>().prop_map(|n| n.to_string())],
        end_port in any::<i32>(),
        cidr in "[0-9a-f.:/]{0,20}",
        protocol in "[A-Z]{0,5}",
        types in "[A-Za-z, ]{0,20}",
    ) {
        let yaml = format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: m, namespace: n}}\nspec:\n  podSelector: {{matchExpressions: [{{key: '{selector_key}', operator: '{operator}', values: [a]}}]}}\n  policyTypes: [{types}]\n  ingress: [{{from: [{{ipBlock: {{cidr: '{cidr}'}}}}], ports: [{{port: {port}, endPort: {end_port}, protocol: '{protocol}'}}]}}]\n"
        );
        let mut loader = Loader::new("default");
        loader.load_str("mutated.yaml", &yaml);
        let loaded = loader.finish();
        prop_assert!(loaded.has_errors() || loaded.cluster.policies().len() == 1);
    }
}
