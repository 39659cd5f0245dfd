//! Precedence of runtime-profile layers (SPEC §2.6: app defaults <
//! environment profile < temp/changeset overrides).
//!
//! Invariant: [`effective_variables`] is **the only** resolution of env vars
//! for a context; gates, deployments, temp-environment provisioning and the
//! drift check all call it (and [`effective_secrets`] for which sealed
//! secret value to use), so no two parts of Conman can disagree on what a
//! process runs with. The result equals folding the layers in order, later
//! layers winning per key, and contains every key of every layer; each value
//! says which layer it came from.
//!
//! The layers, lowest first:
//! 1. `app_defaults`: the app's default profile;
//! 2. `environment`: the target environment's profile — for a temp
//!    environment, its own profile (derived from a base persistent profile
//!    at creation);
//! 3. `overrides`, in the given order: changeset overrides (in release
//!    order) and any temp override. The caller passes only those that apply
//!    to the target (see `ProfileOverride::applies_to`); the `Layer::Override`
//!    index is the position in that slice.
//!
//! Values are taken as they are: type checks happen when a layer is written
//! (`apply_patch`, `ProfileOverride::check_against`), not here.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{EnvValue, EnvVars, ProfileOverride, Secrets};

/// Where an effective value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "layer", rename_all = "snake_case")]
pub enum Layer {
    /// The app's default profile.
    AppDefaults,
    /// The environment's profile.
    Environment,
    /// The override at this position of the `overrides` slice.
    Override {
        /// Position in the slice.
        index: usize,
    },
}

/// One resolved variable.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EffectiveVar {
    /// The value that wins.
    pub value: EnvValue,
    /// The layer it comes from.
    pub source: Layer,
}

/// Resolves the env vars a process runs with (see the module doc): app
/// defaults, then the environment profile, then each override in order,
/// later layers winning per key.
pub fn effective_variables(
    app_defaults: &EnvVars,
    environment: Option<&EnvVars>,
    overrides: &[ProfileOverride],
) -> BTreeMap<String, EffectiveVar> {
    let mut out = BTreeMap::new();
    let mut layer = |vars: &EnvVars, source: Layer| {
        for (k, v) in vars {
            out.insert(k.clone(), EffectiveVar { value: v.clone(), source });
        }
    };
    layer(app_defaults, Layer::AppDefaults);
    if let Some(env) = environment {
        layer(env, Layer::Environment);
    }
    for (index, o) in overrides.iter().enumerate() {
        layer(&o.env_vars, Layer::Override { index });
    }
    out
}

/// Resolves, with the same precedence, which layer's sealed value each
/// secret takes (the caller unseals the value of that layer).
pub fn effective_secrets(
    app_defaults: &Secrets,
    environment: Option<&Secrets>,
    overrides: &[ProfileOverride],
) -> BTreeMap<String, Layer> {
    let mut out: BTreeMap<String, Layer> = app_defaults.keys().map(|k| (k.clone(), Layer::AppDefaults)).collect();
    if let Some(env) = environment {
        out.extend(env.keys().map(|k| (k.clone(), Layer::Environment)));
    }
    for (index, o) in overrides.iter().enumerate() {
        out.extend(o.secrets.iter().map(|k| (k.clone(), Layer::Override { index })));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::runtime_profile::test_support::later;
    use crate::domain::runtime_profile::{OverrideTarget, SecretMeta};
    use proptest::prelude::*;

    fn vars(pairs: &[(&str, EnvValue)]) -> EnvVars {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    fn ovr(v: EnvVars, secrets: &[&str]) -> ProfileOverride {
        ProfileOverride {
            target: OverrideTarget::Environment("prod".into()),
            env_vars: v,
            secrets: secrets.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn later_layers_win() {
        let defaults = vars(&[("A", EnvValue::String("d".into())), ("B", EnvValue::Number(1.0))]);
        let env = vars(&[("B", EnvValue::Number(2.0)), ("C", EnvValue::Boolean(true))]);
        let o = [
            ovr(vars(&[("C", EnvValue::Boolean(false))]), &[]),
            ovr(vars(&[("D", EnvValue::Json(serde_json::json!({})))]), &[]),
        ];
        let eff = effective_variables(&defaults, Some(&env), &o);
        assert_eq!(eff["A"], EffectiveVar { value: EnvValue::String("d".into()), source: Layer::AppDefaults });
        assert_eq!(eff["B"], EffectiveVar { value: EnvValue::Number(2.0), source: Layer::Environment });
        assert_eq!(eff["C"], EffectiveVar { value: EnvValue::Boolean(false), source: Layer::Override { index: 0 } });
        assert_eq!(eff["D"].source, Layer::Override { index: 1 });
        assert_eq!(eff.len(), 4);

        let no_env = effective_variables(&defaults, None, &[]);
        assert_eq!(no_env["B"].source, Layer::AppDefaults);
        assert_eq!(
            serde_json::to_value(Layer::Override { index: 2 }).unwrap(),
            serde_json::json!({"layer": "override", "index": 2})
        );
    }

    #[test]
    fn secrets_follow_the_same_order() {
        let meta = SecretMeta { revision: 1, updated_at: later() };
        let defaults: Secrets = [("A".to_owned(), meta.clone()), ("B".to_owned(), meta.clone())].into();
        let env: Secrets = [("B".to_owned(), meta)].into();
        let eff = effective_secrets(&defaults, Some(&env), &[ovr(EnvVars::new(), &["A", "C"])]);
        assert_eq!(eff["A"], Layer::Override { index: 0 });
        assert_eq!(eff["B"], Layer::Environment);
        assert_eq!(eff["C"], Layer::Override { index: 0 });
    }

    fn arb_value() -> impl Strategy<Value = EnvValue> {
        prop_oneof![
            "[a-z]{0,4}".prop_map(EnvValue::String),
            (-1000i32..1000).prop_map(|n| EnvValue::Number(f64::from(n))),
            any::<bool>().prop_map(EnvValue::Boolean),
        ]
    }

    fn arb_vars() -> impl Strategy<Value = EnvVars> {
        proptest::collection::btree_map("[A-F]", arb_value(), 0..5)
    }

    proptest! {
        #[test]
        fn result_is_the_ordered_fold_of_the_layers(
            defaults in arb_vars(),
            env in proptest::option::of(arb_vars()),
            layers in proptest::collection::vec(arb_vars(), 0..4),
        ) {
            let overrides: Vec<ProfileOverride> = layers.iter().map(|l| ovr(l.clone(), &[])).collect();
            let eff = effective_variables(&defaults, env.as_ref(), &overrides);

            let mut all: Vec<(Layer, &EnvVars)> = vec![(Layer::AppDefaults, &defaults)];
            if let Some(e) = &env {
                all.push((Layer::Environment, e));
            }
            all.extend(layers.iter().enumerate().map(|(index, l)| (Layer::Override { index }, l)));
            let mut folded = BTreeMap::new();
            for (source, layer) in &all {
                for (k, v) in *layer {
                    folded.insert(k.clone(), EffectiveVar { value: v.clone(), source: *source });
                }
            }
            prop_assert_eq!(&eff, &folded);
            for (_, layer) in &all {
                for k in layer.keys() {
                    prop_assert!(eff.contains_key(k));
                }
            }
            prop_assert!(eff.keys().all(|k| all.iter().any(|(_, l)| l.contains_key(k))));
            for (k, ev) in &eff {
                let last = all.iter().rev().find(|(_, l)| l.contains_key(k)).unwrap();
                prop_assert_eq!(ev.source, last.0);
                prop_assert_eq!(&ev.value, &last.1[k]);
            }
        }
    }
}
