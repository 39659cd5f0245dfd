//! Hand-written schemas of request fields whose Rust type says less than
//! the rule the core applies (decision 0014): the closed sets of names an
//! enum field takes, and the shapes of names, titles, paths, keys and
//! passwords. A schema here says exactly what the core accepts where JSON
//! Schema can say it, so that schema-valid input is accepted and
//! schema-invalid input refused (the `fuzz` gate step checks both ways).
//!
//! Each function is a `schema_with` target; `_opt` variants also allow
//! `null` (an absent or `null` field leaves the value as it is).

use conman_core::domain::job::{JobState, JobType};
use conman_core::domain::release::ReleaseState;
use conman_core::domain::StateMachine as _;
use conman_core::rbac::Role;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::RefOr;

/// A character the core counts as a control character (`char::is_control`).
const CONTROL: &str = r"\x00-\x1f\x7f-\x9f";

fn string(nullable: bool) -> ObjectBuilder {
    let ty = if nullable { SchemaType::from_iter([Type::String, Type::Null]) } else { SchemaType::new(Type::String) };
    ObjectBuilder::new().schema_type(ty)
}

fn one_of(values: &[&str], nullable: bool) -> RefOr<Schema> {
    let mut all: Vec<serde_json::Value> = values.iter().map(|v| serde_json::Value::from(*v)).collect();
    if nullable {
        all.push(serde_json::Value::Null);
    }
    string(nullable).enum_values(Some(all)).into()
}

fn roles() -> Vec<&'static str> {
    Role::ALL.iter().map(|r| r.as_str()).collect()
}

/// `user`, `reviewer`, `config_manager` or `app_admin`.
pub(crate) fn role() -> RefOr<Schema> {
    one_of(&roles(), false)
}

/// `persistent_env`, `temp_workspace` or `temp_changeset`.
pub(crate) fn profile_kind() -> RefOr<Schema> {
    one_of(&["persistent_env", "temp_workspace", "temp_changeset"], false)
}

/// `none`, `seed` or `copy_from_base`.
pub(crate) fn data_strategy() -> RefOr<Schema> {
    one_of(&["none", "seed", "copy_from_base"], false)
}

/// `none`, `seed` or `copy_from_base`, or `null`.
pub(crate) fn data_strategy_opt() -> RefOr<Schema> {
    one_of(&["none", "seed", "copy_from_base"], true)
}

/// `integration_head` or `canonical_env_release`, or `null`.
pub(crate) fn baseline_mode_opt() -> RefOr<Schema> {
    one_of(&["integration_head", "canonical_env_release"], true)
}

/// `submit_commit` or `manual_checkpoint`, or `null`.
pub(crate) fn commit_mode_opt() -> RefOr<Schema> {
    one_of(&["submit_commit", "manual_checkpoint"], true)
}

/// `stricter_two_approvals` or `same_as_changeset`, or `null`.
pub(crate) fn approval_policy_opt() -> RefOr<Schema> {
    one_of(&["stricter_two_approvals", "same_as_changeset"], true)
}

/// `placeholder` or `real`, or `null`.
pub(crate) fn unreviewed_gate_secrets_opt() -> RefOr<Schema> {
    use conman_core::domain::app::UnreviewedGateSecrets as U;
    one_of(&[U::Placeholder.as_str(), U::Real.as_str()], true)
}

/// `merge` or `rebase`, or `null`.
pub(crate) fn sync_strategy_opt() -> RefOr<Schema> {
    one_of(&["merge", "rebase"], true)
}

/// `approve`, `request_changes` or `reject`.
pub(crate) fn review_action() -> RefOr<Schema> {
    one_of(&["approve", "request_changes", "reject"], false)
}

/// The job types a caller may start: the gate runs.
pub(crate) fn startable_job_type() -> RefOr<Schema> {
    one_of(&["gate_submit", "gate_release", "gate_deploy"], false)
}

/// A job type filter.
pub(crate) fn job_type() -> RefOr<Schema> {
    let types: Vec<&str> = JobType::ALL.iter().map(|t| t.as_str()).collect();
    one_of(&types, false)
}

/// A job state filter.
pub(crate) fn job_state() -> RefOr<Schema> {
    let states: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
    one_of(&states, false)
}

/// A changeset state filter.
pub(crate) fn changeset_state() -> RefOr<Schema> {
    let states = [
        "draft",
        "submitted",
        "in_review",
        "approved",
        "changes_requested",
        "rejected",
        "queued",
        "released",
        "conflicted",
        "needs_revalidation",
    ];
    one_of(&states, false)
}

/// `none`, `postgres`, `mysql` or `sqlite`.
pub(crate) fn database_engine() -> RefOr<Schema> {
    one_of(&["none", "postgres", "mysql", "sqlite"], false)
}

/// `none`, `postgres`, `mysql` or `sqlite`, or `null`.
pub(crate) fn database_engine_opt() -> RefOr<Schema> {
    one_of(&["none", "postgres", "mysql", "sqlite"], true)
}

/// `external`, `create_empty` or `clone_from_base`.
pub(crate) fn provisioning_mode() -> RefOr<Schema> {
    one_of(&["external", "create_empty", "clone_from_base"], false)
}

/// `external`, `create_empty` or `clone_from_base`, or `null`.
pub(crate) fn provisioning_mode_opt() -> RefOr<Schema> {
    one_of(&["external", "create_empty", "clone_from_base"], true)
}

/// `clean` or `conflicted`.
pub(crate) fn revalidation_outcome() -> RefOr<Schema> {
    one_of(&["clean", "conflicted", "gate_running", "gate_failed"], false)
}

/// A release state.
pub(crate) fn release_state() -> RefOr<Schema> {
    let states: Vec<&str> = ReleaseState::STATES.iter().map(|s| s.as_str()).collect();
    one_of(&states, false)
}

/// `composed`, `already_contained`, `conflicted` or `override_conflict`, or `null`.
pub(crate) fn compose_outcome_opt() -> RefOr<Schema> {
    one_of(&["composed", "already_contained", "conflicted", "override_conflict"], true)
}

/// A release title: up to 200 characters, none a control character, or `null`.
pub(crate) fn release_title_opt() -> RefOr<Schema> {
    string(true).pattern(Some(format!("^[^{CONTROL}]{{0,200}}$"))).into()
}

/// A release's selection: distinct changeset ids, at most 500.
pub(crate) fn changeset_selection() -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(uuid())
        .unique_items(true)
        .max_items(Some(conman_core::domain::release::MAX_SELECTION))
        .into()
}

/// `submit`, `release` or `deploy`.
pub(crate) fn gate_kind() -> RefOr<Schema> {
    use conman_core::services::GateKind as G;
    one_of(&[G::Submit.as_str(), G::Release.as_str(), G::Deploy.as_str()], false)
}

/// `create`, `patch` or `revert`.
pub(crate) fn revision_reason_type() -> RefOr<Schema> {
    one_of(&["create", "patch", "revert"], false)
}

/// `raw` or `semantic`.
pub(crate) fn diff_mode() -> RefOr<Schema> {
    one_of(&["raw", "semantic"], false)
}

/// 1 to `max` characters once trimmed, none of them a control character
/// (the length is counted inside the pattern, after the surrounding
/// whitespace, as the core counts it).
fn printable(max: usize, nullable: bool) -> RefOr<Schema> {
    let inner = max - 2;
    string(nullable).pattern(Some(format!(r"^\s*[^\s{CONTROL}]([^{CONTROL}]{{0,{inner}}}[^\s{CONTROL}])?\s*$"))).into()
}

/// A workspace or changeset title: 1-200 printable characters.
pub(crate) fn title() -> RefOr<Schema> {
    printable(200, false)
}

/// [`title`], or `null`.
pub(crate) fn title_opt() -> RefOr<Schema> {
    printable(200, true)
}

/// A person's display name: 1-200 printable characters.
pub(crate) fn display_name() -> RefOr<Schema> {
    printable(200, false)
}

/// A personal token's name: 1-100 printable characters.
pub(crate) fn token_name() -> RefOr<Schema> {
    printable(100, false)
}

/// Lower-case letters, digits and single inner hyphens, 1-63 characters
/// (app, profile and environment names).
fn slug(nullable: bool) -> RefOr<Schema> {
    string(nullable).pattern(Some(r"^[a-z0-9]+(-[a-z0-9]+)*$")).max_length(Some(63)).into()
}

/// An app, profile or environment name.
pub(crate) fn slug_name() -> RefOr<Schema> {
    slug(false)
}

/// [`slug_name`], or `null`.
pub(crate) fn slug_name_opt() -> RefOr<Schema> {
    slug(true)
}

/// A password: at least 12 characters, at most 1024 bytes.
pub(crate) fn password() -> RefOr<Schema> {
    string(false).min_length(Some(12)).max_length(Some(1024)).into()
}

/// A master key: 64 hex characters.
pub(crate) fn master_key() -> RefOr<Schema> {
    string(false).pattern(Some("^[0-9a-fA-F]{64}$")).into()
}

/// One path segment: not empty, not `.` or `..`, no `/`, `\` or control
/// character.
fn segment() -> String {
    let plain = format!(r"[^/\\{CONTROL}]");
    let no_dot = format!(r"[^/\\.{CONTROL}]");
    format!(r"({no_dot}{plain}*|\.{no_dot}{plain}*|\.\.{plain}+)")
}

/// A repository path, or empty for the root.
pub(crate) fn repo_path_or_root() -> RefOr<Schema> {
    let seg = segment();
    string(false).pattern(Some(format!("^({seg}(/{seg})*)?$"))).max_length(Some(4096)).into()
}

/// A repository path: relative, `/`-separated, normalised, at most 4096
/// bytes.
pub(crate) fn repo_path() -> RefOr<Schema> {
    let seg = segment();
    string(false).pattern(Some(format!("^{seg}(/{seg})*$"))).max_length(Some(4096)).into()
}

/// Text that is not blank and has no NUL, at most `max` characters.
fn not_blank(max: usize) -> RefOr<Schema> {
    string(false).pattern(Some(r"^[^\x00]*\S[^\x00]*$")).max_length(Some(max)).into()
}

/// A checkpoint message: not blank, at most 10,000 bytes, no NUL.
pub(crate) fn checkpoint_message() -> RefOr<Schema> {
    not_blank(10_000)
}

/// A comment body: not blank, at most 64 KiB, no NUL.
pub(crate) fn comment_body() -> RefOr<Schema> {
    not_blank(64 * 1024)
}

/// [`comment_body`], or `null`.
pub(crate) fn comment_body_opt() -> RefOr<Schema> {
    string(true).pattern(Some(r"^[^\x00]*\S[^\x00]*$")).max_length(Some(64 * 1024)).into()
}

/// Standard, padded, canonical base64 (the unused bits of the last
/// character are zero, as the core's strict decoder requires).
pub(crate) fn base64() -> RefOr<Schema> {
    let b = "[A-Za-z0-9+/]";
    string(false).pattern(Some(format!("^({b}{{4}})*({b}[AQgw]==|{b}{{2}}[AEIMQUYcgkosw048]=)?$"))).into()
}

/// A full commit sha, or `null`.
pub(crate) fn commit_sha_opt() -> RefOr<Schema> {
    string(true).pattern(Some("^[0-9a-f]{40}$")).into()
}

fn uuid() -> ObjectBuilder {
    string(false).format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Uuid)))
}

fn single_key(key: &str, value: ObjectBuilder) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::Object))
        .property(key, value)
        .required(key)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
}

/// The `details` of an error envelope, or `null`: an object whose keys
/// depend on the error code. The keys the core writes are listed with
/// their types; a new rule may add keys, so others are allowed.
pub(crate) fn error_details() -> RefOr<Schema> {
    let int = || ObjectBuilder::new().schema_type(SchemaType::new(Type::Integer));
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .property("field", string(false).description(Some("The input field at fault.")))
        .property("reason", string(false).description(Some("Why: `stale_version`, `taken`, `out_of_range`, ...")))
        .property("entity", string(false).description(Some("`invalid_transition`: the entity's kind.")))
        .property("from", string(false).description(Some("`invalid_transition`: the state it is in.")))
        .property("event", string(false).description(Some("`invalid_transition`: the refused event.")))
        .property("limit_bytes", int().description(Some("`payload_too_large`: the limit.")))
        .property("retry_after_secs", int().description(Some("`rate_limited`: when to retry.")))
        .property("paths", ArrayBuilder::new().items(string(false)).description(Some("Conflicting repository paths.")))
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
        .into()
}

/// An override's target: `{"environment": name}`, `{"environment_id": id}`
/// or `{"profile_id": id}`.
pub(crate) fn override_target() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(single_key("environment", string(false)))
        .item(single_key("environment_id", uuid()))
        .item(single_key("profile_id", uuid()))
        .into()
}

fn nullable_string() -> ObjectBuilder {
    string(true)
}

/// An app's gate commands, or `null`.
pub(crate) fn gates_opt() -> RefOr<Schema> {
    let int = ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Integer, Type::Null])).minimum(Some(1));
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .property("submit", nullable_string())
        .property("release", nullable_string())
        .property("deploy", nullable_string())
        .property("timeout_secs", int)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .into()
}

/// Code-owner path rules, or `null`.
pub(crate) fn path_rules_opt() -> RefOr<Schema> {
    let mut role: Vec<serde_json::Value> = roles().into_iter().map(serde_json::Value::from).collect();
    role.push(serde_json::Value::Null);
    let rule = ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::Object))
        .property("glob", string(false).min_length(Some(1)).max_length(Some(1024)))
        .required("glob")
        .property("role", string(true).enum_values(Some(role)))
        .property("user_ids", ArrayBuilder::new().items(uuid()))
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    ArrayBuilder::new().schema_type(SchemaType::from_iter([Type::Array, Type::Null])).items(rule).into()
}

/// `deserialize_with` of a nested optional object: serde would also build
/// a struct from an array; the schema (and this) says object or `null`.
pub(crate) fn object_only<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error as _;
    use serde::Deserialize as _;
    let Some(map) = Option::<serde_json::Map<String, serde_json::Value>>::deserialize(d)? else { return Ok(None) };
    T::deserialize(serde_json::Value::Object(map)).map(Some).map_err(D::Error::custom)
}

/// [`object_only`] for an optional list of objects.
pub(crate) fn objects_only<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error as _;
    use serde::Deserialize as _;
    let Some(maps) = Option::<Vec<serde_json::Map<String, serde_json::Value>>>::deserialize(d)? else {
        return Ok(None);
    };
    maps.into_iter()
        .map(|m| T::deserialize(serde_json::Value::Object(m)).map_err(D::Error::custom))
        .collect::<Result<_, _>>()
        .map(Some)
}

/// `deploy`, `promote` or `redeploy_prior`.
pub(crate) fn deployment_kind() -> RefOr<Schema> {
    one_of(&["deploy", "promote", "redeploy_prior", "revert_and_release"], false)
}

/// `skip_stage` or `concurrent_batch`, or `null`.
pub(crate) fn deployment_exception_opt() -> RefOr<Schema> {
    one_of(&["skip_stage", "concurrent_batch"], true)
}

/// A deployment state.
pub(crate) fn deployment_state() -> RefOr<Schema> {
    one_of(&["pending", "running", "succeeded", "failed", "canceled"], false)
}

/// The rollback modes this server offers.
pub(crate) fn rollback_mode() -> RefOr<Schema> {
    one_of(&["redeploy_prior", "revert_and_release"], false)
}

/// A weekday name.
pub(crate) fn weekday() -> RefOr<Schema> {
    one_of(&crate::dto::WEEKDAY_NAMES, false)
}

/// A reason: 1-500 printable characters.
pub(crate) fn reason() -> RefOr<Schema> {
    printable(500, false)
}

/// A reason: 1-500 printable characters, or `null`.
pub(crate) fn reason_opt() -> RefOr<Schema> {
    printable(500, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern_of(schema: RefOr<Schema>) -> String {
        let json = serde_json::to_value(schema).expect("schema json");
        json["pattern"].as_str().expect("pattern").to_owned()
    }

    #[test]
    fn schemas_name_the_cores_sets() {
        let json = serde_json::to_value(role()).expect("json");
        assert_eq!(json["enum"], serde_json::json!(["user", "reviewer", "config_manager", "app_admin"]));
        let json = serde_json::to_value(commit_mode_opt()).expect("json");
        assert_eq!(json["type"], serde_json::json!(["string", "null"]));
        assert!(json["enum"].as_array().expect("enum").contains(&serde_json::Value::Null));
    }

    #[test]
    fn patterns_are_written_out() {
        assert!(pattern_of(repo_path()).starts_with("^("));
        assert!(pattern_of(title()).contains(r"\x00-\x1f\x7f-\x9f"));
    }
}
