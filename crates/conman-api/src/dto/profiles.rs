//! Wire types of runtime profiles (SPEC §2.6), their revisions and secret
//! reveal, of environments (SPEC §2.5), and of changeset profile overrides.
//!
//! Request types here are the only readers of their bodies: the core's
//! inputs (`ProfileInput`, `ProfilePatch`, `ProfileOverrideInput`, ...)
//! have no serde; each request refuses unknown fields at every level and a
//! map key given twice, and converts into the core's value.
//!
//! Secret plaintexts travel only *into* the server, as JSON strings held in
//! [`SecretPlaintext`] (which prints as `[redacted]` and cannot be
//! serialised). Every answer carries secret names, metadata and masks only —
//! except [`RevealedSecretDto`], the audited `app_admin` reveal, whose
//! `Debug` output redacts the value.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use conman_core::domain::environment::Environment;
use conman_core::domain::runtime_profile::input::{
    DatabasePatch, LifecyclePatch, MigrationsInput, MigrationsPatch, ProfileInput, ProfilePatch,
};
use conman_core::domain::runtime_profile::{
    AppliedState, DataStrategy, DatabaseEngine, DatabaseSettings, EnvType, EnvValue, Lifecycle, MigrationSettings,
    OverrideTarget, ProfileKind, ProfileOverride, ProfileOverrideInput, ProfileRevision, ProvisioningMode,
    RevisionReason, SecretPlaintext, Secrets, TypedValueInput,
};
use conman_core::ids::{EnvironmentId, RuntimeProfileId};
use conman_core::services::{EnvironmentInput, ProfileView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::de::{nullable, secret_map, unique_map};

/// The wire name of a serde enum value (`persistent_env`, `none`, ...).
fn wire_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// A typed env var value: `{"type": "number", "value": 3}`. Types are
/// `string`, `number` (finite; `"NaN"`/`"Infinity"` are refused), `boolean`
/// and `json` (any document). In requests the value must match the type.
///
/// Its schema is a `oneOf` of the four `{type, value}` pairs (hand-written
/// below: the pair is one field typed by the other, which derive cannot say).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvValueDto {
    /// `string`, `number`, `boolean` or `json`.
    #[serde(rename = "type")]
    pub ty: String,
    /// The value (a JSON number for `number`, any document for `json`).
    pub value: serde_json::Value,
}

impl utoipa::PartialSchema for EnvValueDto {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, SchemaType, Type};
        let pair = |ty: &str, value: ObjectBuilder| {
            ObjectBuilder::new()
                .property("type", ObjectBuilder::new().schema_type(Type::String).enum_values(Some([ty])))
                .required("type")
                .property("value", value)
                .required("value")
                .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        };
        let typed = |t: Type| ObjectBuilder::new().schema_type(t);
        OneOfBuilder::new()
            .item(pair("string", typed(Type::String)))
            .item(pair("number", typed(Type::Number)))
            .item(pair("boolean", typed(Type::Boolean)))
            .item(pair(
                "json",
                ObjectBuilder::new().schema_type(SchemaType::AnyValue).description(Some("Any JSON document.")),
            ))
            .description(Some("A typed env var value (SPEC §2.6): the value must match `type`."))
            .examples([serde_json::json!({ "type": "number", "value": 3 })])
            .into()
    }
}

impl ToSchema for EnvValueDto {}

impl From<&EnvValue> for EnvValueDto {
    fn from(v: &EnvValue) -> Self {
        let value = match v {
            EnvValue::String(s) => serde_json::Value::String(s.clone()),
            // Integral numbers travel as JSON integers (5, not 5.0).
            EnvValue::Number(n) if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 => {
                serde_json::Value::from(*n as i64)
            }
            EnvValue::Number(n) => serde_json::Number::from_f64(*n).map_or(serde_json::Value::Null, Into::into),
            EnvValue::Boolean(b) => serde_json::Value::Bool(*b),
            EnvValue::Json(j) => j.clone(),
        };
        EnvValueDto { ty: v.env_type().as_str().to_owned(), value }
    }
}

fn env_vars_dto(vars: &BTreeMap<String, EnvValue>) -> BTreeMap<String, EnvValueDto> {
    vars.iter().map(|(k, v)| (k.clone(), EnvValueDto::from(v))).collect()
}

/// What a profile records about a secret (never its value).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SecretMetaDto {
    /// The profile revision that set the current value.
    pub revision: u32,
    /// When the current value was set.
    pub updated_at: DateTime<Utc>,
}

/// A secret as every reader sees it (SPEC §2.6 mask: up to 8 characters →
/// only the last 4 shown; longer → first 4 and last 4).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MaskedSecretDto {
    /// The mask.
    pub mask: String,
    /// The profile revision that set the value.
    pub revision: u32,
}

/// Database settings. Also the shape accepted by create (every field optional).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DatabaseDto {
    /// `none` (default), `postgres`, `mysql` or `sqlite`.
    #[schema(schema_with = crate::dto::schemas::database_engine)]
    pub engine: String,
    /// Name of the *secret* holding the connection string.
    pub connection_ref: Option<String>,
    /// `external` (default), `create_empty` or `clone_from_base`.
    #[schema(schema_with = crate::dto::schemas::provisioning_mode)]
    pub provisioning_mode: String,
    /// Profile whose database or data is copied.
    pub base_profile_id: Option<Uuid>,
}

impl From<&DatabaseSettings> for DatabaseDto {
    fn from(d: &DatabaseSettings) -> Self {
        DatabaseDto {
            engine: wire_name(&d.engine),
            connection_ref: d.connection_ref.clone(),
            provisioning_mode: wire_name(&d.provisioning_mode),
            base_profile_id: d.base_profile_id.map(|p| p.0),
        }
    }
}

/// What the last deployment applied of a profile's migrations.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AppliedStateDto {
    /// Identifier of the last applied migration.
    pub last_applied: String,
    /// Checksum of the applied set, compared by the drift check.
    pub checksum: Option<String>,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// Migration settings.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MigrationsDto {
    /// Repository paths holding migrations.
    pub paths: Vec<String>,
    /// The command that applies them.
    pub command: Option<String>,
    /// What the last deployment applied; read-only.
    pub applied_state: Option<AppliedStateDto>,
}

impl From<&MigrationSettings> for MigrationsDto {
    fn from(m: &MigrationSettings) -> Self {
        MigrationsDto {
            paths: m.paths.clone(),
            command: m.command.clone(),
            applied_state: m.applied_state.as_ref().map(AppliedStateDto::from),
        }
    }
}

impl From<&AppliedState> for AppliedStateDto {
    fn from(a: &AppliedState) -> Self {
        AppliedStateDto {
            last_applied: a.last_applied.clone(),
            checksum: a.checksum.clone(),
            recorded_at: a.recorded_at,
        }
    }
}

/// Temp-environment lifecycle.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LifecycleDto {
    /// Idle hours before expiry (1-720, default 24).
    pub idle_ttl_hours: u32,
    /// Grace hours after expiry (1-168, default 1).
    pub grace_hours: u32,
    /// Cleanup runs by itself after grace (default true).
    pub auto_cleanup: bool,
}

impl From<&Lifecycle> for LifecycleDto {
    fn from(l: &Lifecycle) -> Self {
        LifecycleDto { idle_ttl_hours: l.idle_ttl_hours, grace_hours: l.grace_hours, auto_cleanup: l.auto_cleanup }
    }
}

/// A runtime profile as every reader sees it: env vars, secret names with
/// metadata and masks — never a secret value.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RuntimeProfileDto {
    /// Id.
    pub id: Uuid,
    /// App.
    pub app_id: Uuid,
    /// Name (slug, unique within the app).
    pub name: String,
    /// `persistent_env`, `temp_workspace` or `temp_changeset`.
    pub kind: String,
    /// Base URL.
    pub base_url: Option<String>,
    /// Typed env vars, by name.
    pub env_vars: BTreeMap<String, EnvValueDto>,
    /// Secret metadata, by name.
    pub secrets: BTreeMap<String, SecretMetaDto>,
    /// Masked secret values, by name.
    pub masked_secrets: BTreeMap<String, MaskedSecretDto>,
    /// Database settings.
    pub database: DatabaseDto,
    /// Migration settings.
    pub migrations: MigrationsDto,
    /// `none`, `seed` or `copy_from_base`.
    pub data_strategy: String,
    /// Lifecycle.
    pub lifecycle: LifecycleDto,
    /// Latest revision, from 1.
    pub revision: u32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Time of the latest revision.
    pub updated_at: DateTime<Utc>,
}

impl From<&ProfileView> for RuntimeProfileDto {
    fn from(v: &ProfileView) -> Self {
        let p = &v.profile;
        RuntimeProfileDto {
            id: p.id.0,
            app_id: p.app_id.0,
            name: p.name.clone(),
            kind: wire_name(&p.kind),
            base_url: p.base_url.clone(),
            env_vars: env_vars_dto(&p.env_vars),
            secrets: secret_metas(&p.secrets),
            masked_secrets: v
                .masked_secrets
                .iter()
                .map(|(k, m)| (k.clone(), MaskedSecretDto { mask: m.mask.clone(), revision: m.revision }))
                .collect(),
            database: DatabaseDto::from(&p.database),
            migrations: MigrationsDto::from(&p.migrations),
            data_strategy: wire_name(&p.data_strategy),
            lifecycle: LifecycleDto::from(&p.lifecycle),
            revision: p.revision,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// One append-only revision of a profile.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProfileRevisionDto {
    /// The profile.
    pub profile_id: Uuid,
    /// Revision number, from 1.
    pub number: u32,
    /// The profile's document at this revision (secrets as names and
    /// metadata only).
    pub document: ProfileDocumentDto,
    /// Who made the change.
    pub author: Uuid,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Why: `{"type": "create"}`, `{"type": "patch"}` or `{"type": "revert", "to_revision": n}`.
    pub reason: RevisionReasonDto,
}

/// The user-edited content of a profile at one revision.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProfileDocumentDto {
    /// Name.
    pub name: String,
    /// `persistent_env`, `temp_workspace` or `temp_changeset`.
    #[schema(schema_with = crate::dto::schemas::profile_kind)]
    pub kind: String,
    /// Base URL.
    pub base_url: Option<String>,
    /// Typed env vars, by name.
    pub env_vars: BTreeMap<String, EnvValueDto>,
    /// Secret metadata, by name.
    pub secrets: BTreeMap<String, SecretMetaDto>,
    /// Database settings.
    pub database: DatabaseDto,
    /// Migration settings (the applied state is not part of a revision).
    pub migrations: MigrationsInputDto,
    /// `none`, `seed` or `copy_from_base`.
    #[schema(schema_with = crate::dto::schemas::data_strategy)]
    pub data_strategy: String,
    /// Lifecycle.
    pub lifecycle: LifecycleDto,
}

/// Why a revision exists.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RevisionReasonDto {
    /// `create`, `patch` or `revert`.
    #[serde(rename = "type")]
    #[schema(schema_with = crate::dto::schemas::revision_reason_type)]
    pub ty: String,
    /// The restored revision's number (`revert` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_revision: Option<u32>,
}

impl From<RevisionReason> for RevisionReasonDto {
    fn from(r: RevisionReason) -> Self {
        match r {
            RevisionReason::Create => RevisionReasonDto { ty: "create".into(), to_revision: None },
            RevisionReason::Patch => RevisionReasonDto { ty: "patch".into(), to_revision: None },
            RevisionReason::Revert { to_revision } => {
                RevisionReasonDto { ty: "revert".into(), to_revision: Some(to_revision) }
            }
        }
    }
}

fn secret_metas(secrets: &Secrets) -> BTreeMap<String, SecretMetaDto> {
    secrets.iter().map(|(k, m)| (k.clone(), SecretMetaDto { revision: m.revision, updated_at: m.updated_at })).collect()
}

impl From<&ProfileRevision> for ProfileRevisionDto {
    fn from(r: &ProfileRevision) -> Self {
        let d = &r.document;
        let document = ProfileDocumentDto {
            name: d.name.clone(),
            kind: wire_name(&d.kind),
            base_url: d.base_url.clone(),
            env_vars: env_vars_dto(&d.env_vars),
            secrets: secret_metas(&d.secrets),
            database: DatabaseDto::from(&d.database),
            migrations: MigrationsInputDto { paths: d.migrations.paths.clone(), command: d.migrations.command.clone() },
            data_strategy: wire_name(&d.data_strategy),
            lifecycle: LifecycleDto::from(&d.lifecycle),
        };
        ProfileRevisionDto {
            profile_id: r.profile_id.0,
            number: r.number,
            document,
            author: r.author.0,
            created_at: r.created_at,
            reason: r.reason.into(),
        }
    }
}

/// A typed env var value in a request: `{"type": "number", "value": 3}`
/// (its schema is [`EnvValueDto`]'s). The value stays raw JSON so the core
/// says precisely what is wrong with it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypedValueDto {
    /// `string`, `number`, `boolean` or `json`.
    #[serde(rename = "type")]
    pub ty: EnvType,
    /// The value, checked against `ty` by the core.
    pub value: serde_json::Value,
}

impl From<TypedValueDto> for TypedValueInput {
    fn from(v: TypedValueDto) -> Self {
        TypedValueInput { ty: v.ty, value: v.value }
    }
}

fn typed_inputs(vars: BTreeMap<String, TypedValueDto>) -> BTreeMap<String, TypedValueInput> {
    vars.into_iter().map(|(k, v)| (k, v.into())).collect()
}

/// Database settings as written at create: every field optional, with the
/// defaults of [`DatabaseSettings`] (schema: [`DatabaseDto`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseInputDto {
    /// Engine (default `none`).
    pub engine: DatabaseEngine,
    /// Name of the secret holding the connection string.
    pub connection_ref: Option<String>,
    /// Provisioning mode (default `external`).
    pub provisioning_mode: ProvisioningMode,
    /// Profile whose database or data is copied.
    pub base_profile_id: Option<Uuid>,
}

impl From<DatabaseInputDto> for DatabaseSettings {
    fn from(d: DatabaseInputDto) -> Self {
        DatabaseSettings {
            engine: d.engine,
            connection_ref: d.connection_ref,
            provisioning_mode: d.provisioning_mode,
            base_profile_id: d.base_profile_id.map(RuntimeProfileId),
        }
    }
}

/// Lifecycle as written at create: missing fields take the defaults of
/// [`Lifecycle`] (schema: [`LifecycleDto`]).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleInputDto {
    /// Idle hours before expiry.
    pub idle_ttl_hours: u32,
    /// Grace hours after expiry.
    pub grace_hours: u32,
    /// Cleanup runs by itself after grace.
    pub auto_cleanup: bool,
}

impl Default for LifecycleInputDto {
    fn default() -> Self {
        let l = Lifecycle::default();
        LifecycleInputDto { idle_ttl_hours: l.idle_ttl_hours, grace_hours: l.grace_hours, auto_cleanup: l.auto_cleanup }
    }
}

impl From<LifecycleInputDto> for Lifecycle {
    fn from(l: LifecycleInputDto) -> Self {
        Lifecycle { idle_ttl_hours: l.idle_ttl_hours, grace_hours: l.grace_hours, auto_cleanup: l.auto_cleanup }
    }
}

/// Migration settings as written (the applied state is never written).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MigrationsInputDto {
    /// Repository paths holding migrations.
    pub paths: Vec<String>,
    /// The command that applies them.
    pub command: Option<String>,
}

/// `POST /api/apps/:appId/runtime-profiles` (app admins). Only `name` and
/// `kind` are required; unknown fields are refused at every level. Secret
/// values are plaintext strings; they are sealed at once and never echoed.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProfileRequest {
    /// Name (slug, unique within the app).
    #[schema(schema_with = crate::dto::schemas::slug_name)]
    pub name: String,
    /// `persistent_env`, `temp_workspace` or `temp_changeset`.
    #[schema(schema_with = crate::dto::schemas::profile_kind)]
    pub kind: ProfileKind,
    /// Base URL (`http`/`https`).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Typed env vars, by name.
    #[serde(default, deserialize_with = "unique_map")]
    #[schema(value_type = BTreeMap<String, EnvValueDto>)]
    pub env_vars: BTreeMap<String, TypedValueDto>,
    /// Secret plaintexts, by name.
    #[serde(default, deserialize_with = "secret_map")]
    #[schema(value_type = BTreeMap<String, String>)]
    pub secrets: BTreeMap<String, SecretPlaintext>,
    /// Database settings (missing fields take their defaults).
    #[serde(default)]
    #[schema(value_type = DatabaseDto)]
    pub database: DatabaseInputDto,
    /// Migration settings.
    #[serde(default)]
    pub migrations: MigrationsInputDto,
    /// `none` (default), `seed` or `copy_from_base`.
    #[serde(default)]
    #[schema(schema_with = crate::dto::schemas::data_strategy)]
    pub data_strategy: DataStrategy,
    /// Lifecycle (missing fields take their defaults).
    #[serde(default)]
    #[schema(value_type = LifecycleDto)]
    pub lifecycle: LifecycleInputDto,
}

impl From<CreateProfileRequest> for ProfileInput {
    fn from(r: CreateProfileRequest) -> Self {
        ProfileInput {
            name: r.name,
            kind: r.kind,
            base_url: r.base_url,
            env_vars: typed_inputs(r.env_vars),
            secrets: r.secrets,
            database: r.database.into(),
            migrations: MigrationsInput { paths: r.migrations.paths, command: r.migrations.command },
            data_strategy: r.data_strategy,
            lifecycle: r.lifecycle.into(),
        }
    }
}

/// `database` of a profile patch: absent fields stay, `null` clears.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatabasePatchDto {
    /// New engine (`null`: unchanged).
    #[serde(default)]
    #[schema(schema_with = crate::dto::schemas::database_engine_opt)]
    pub engine: Option<DatabaseEngine>,
    /// New connection reference (`null` clears).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub connection_ref: Option<Option<String>>,
    /// New provisioning mode (`null`: unchanged).
    #[serde(default)]
    #[schema(schema_with = crate::dto::schemas::provisioning_mode_opt)]
    pub provisioning_mode: Option<ProvisioningMode>,
    /// New base profile (`null` clears).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub base_profile_id: Option<Option<Uuid>>,
}

impl From<DatabasePatchDto> for DatabasePatch {
    fn from(d: DatabasePatchDto) -> Self {
        DatabasePatch {
            engine: d.engine,
            connection_ref: d.connection_ref,
            provisioning_mode: d.provisioning_mode,
            base_profile_id: d.base_profile_id.map(|b| b.map(RuntimeProfileId)),
        }
    }
}

/// `migrations` of a profile patch: absent fields stay, `null` clears.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MigrationsPatchDto {
    /// Replaces the path list (`null`: unchanged).
    #[serde(default)]
    pub paths: Option<Vec<String>>,
    /// New command (`null` clears).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub command: Option<Option<String>>,
}

impl From<MigrationsPatchDto> for MigrationsPatch {
    fn from(m: MigrationsPatchDto) -> Self {
        MigrationsPatch { paths: m.paths, command: m.command }
    }
}

/// `lifecycle` of a profile patch: absent fields stay.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LifecyclePatchDto {
    /// New idle TTL, hours (`null`: unchanged).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 720)]
    pub idle_ttl_hours: Option<u32>,
    /// New grace, hours (`null`: unchanged).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 168)]
    pub grace_hours: Option<u32>,
    /// New auto-cleanup flag (`null`: unchanged).
    #[serde(default)]
    pub auto_cleanup: Option<bool>,
}

impl From<LifecyclePatchDto> for LifecyclePatch {
    fn from(l: LifecyclePatchDto) -> Self {
        LifecyclePatch { idle_ttl_hours: l.idle_ttl_hours, grace_hours: l.grace_hours, auto_cleanup: l.auto_cleanup }
    }
}

/// `PATCH /api/apps/:appId/runtime-profiles/:profileId` (app admins): one
/// new revision. Absent fields stay; `null` clears a clearable field. An env
/// var never changes type unless listed in `retype_env_vars` (else 400
/// `type_change`); unsetting an unknown key is refused; an empty patch is
/// refused. Unknown fields are refused at every level.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchProfileRequest {
    /// New name.
    #[serde(default)]
    #[schema(schema_with = crate::dto::schemas::slug_name_opt)]
    pub name: Option<String>,
    /// New base URL (`null` clears).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub base_url: Option<Option<String>>,
    /// Env vars to add or overwrite.
    #[serde(default, deserialize_with = "unique_map")]
    #[schema(value_type = BTreeMap<String, EnvValueDto>)]
    pub set_env_vars: BTreeMap<String, TypedValueDto>,
    /// Env vars to remove (each must exist).
    #[serde(default)]
    pub unset_env_vars: Vec<String>,
    /// Keys of `set_env_vars` whose type may change in this patch.
    #[serde(default)]
    pub retype_env_vars: Vec<String>,
    /// Secret plaintexts to add or overwrite, by name.
    #[serde(default, deserialize_with = "secret_map")]
    #[schema(value_type = BTreeMap<String, String>)]
    pub set_secrets: BTreeMap<String, SecretPlaintext>,
    /// Secrets to remove (each must exist).
    #[serde(default)]
    pub unset_secrets: Vec<String>,
    /// `{engine?, connection_ref?, provisioning_mode?, base_profile_id?}`.
    #[serde(default, deserialize_with = "crate::dto::schemas::object_only")]
    pub database: Option<DatabasePatchDto>,
    /// `{paths?, command?}`.
    #[serde(default, deserialize_with = "crate::dto::schemas::object_only")]
    pub migrations: Option<MigrationsPatchDto>,
    /// New data strategy.
    #[serde(default)]
    #[schema(schema_with = crate::dto::schemas::data_strategy_opt)]
    pub data_strategy: Option<DataStrategy>,
    /// `{idle_ttl_hours?, grace_hours?, auto_cleanup?}`.
    #[serde(default, deserialize_with = "crate::dto::schemas::object_only")]
    pub lifecycle: Option<LifecyclePatchDto>,
}

impl From<PatchProfileRequest> for ProfilePatch {
    fn from(r: PatchProfileRequest) -> Self {
        ProfilePatch {
            name: r.name,
            base_url: r.base_url,
            set_env_vars: typed_inputs(r.set_env_vars),
            unset_env_vars: r.unset_env_vars,
            retype_env_vars: r.retype_env_vars,
            set_secrets: r.set_secrets,
            unset_secrets: r.unset_secrets,
            database: r.database.map(Into::into),
            migrations: r.migrations.map(Into::into),
            data_strategy: r.data_strategy,
            lifecycle: r.lifecycle.map(Into::into),
        }
    }
}

/// `POST .../runtime-profiles/:profileId/revert`: restore an older revision
/// as a new one.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevertProfileRequest {
    /// The revision to restore (older than the current one).
    pub revision: u32,
}

/// Answer of `POST .../secrets/:key/reveal` (app admins; audited without
/// the value). `Debug` redacts the value.
#[derive(Clone, Serialize, ToSchema)]
pub struct RevealedSecretDto {
    /// Secret name.
    pub key: String,
    /// Plaintext value.
    pub value: String,
}

impl fmt::Debug for RevealedSecretDto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevealedSecretDto").field("key", &self.key).field("value", &"[redacted]").finish()
    }
}

/// One deploy stage.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EnvironmentDto {
    /// Id (kept as long as the name is kept).
    pub id: Uuid,
    /// App.
    pub app_id: Uuid,
    /// Name (lower-case slug, unique).
    pub name: String,
    /// Order, from 0.
    pub position: u32,
    /// The user-facing environment (exactly one).
    pub is_canonical: bool,
    /// Its runtime profile.
    pub runtime_profile_id: Option<Uuid>,
}

impl From<&Environment> for EnvironmentDto {
    fn from(e: &Environment) -> Self {
        EnvironmentDto {
            id: e.id.0,
            app_id: e.app_id.0,
            name: e.name.clone(),
            position: e.position,
            is_canonical: e.is_canonical,
            runtime_profile_id: e.runtime_profile_id.map(|p| p.0),
        }
    }
}

/// One environment of `PATCH .../environments`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentInputDto {
    /// Name (lower-case slug, unique).
    #[schema(schema_with = crate::dto::schemas::slug_name)]
    pub name: String,
    /// Order, from 0 (unique).
    pub position: u32,
    /// The user-facing environment; exactly one must be.
    #[serde(default)]
    pub is_canonical: bool,
    /// A `persistent_env` profile of the same app.
    #[serde(default)]
    pub runtime_profile_id: Option<Uuid>,
}

impl From<EnvironmentInputDto> for EnvironmentInput {
    fn from(e: EnvironmentInputDto) -> Self {
        EnvironmentInput {
            name: e.name,
            position: e.position,
            is_canonical: e.is_canonical,
            runtime_profile_id: e.runtime_profile_id.map(RuntimeProfileId),
        }
    }
}

/// `PATCH /api/apps/:appId/environments` (app admins): replaces the whole
/// list. Environments keep their ids when their names are kept.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceEnvironmentsRequest {
    /// The new list: unique names and positions, exactly one canonical.
    pub environments: Vec<EnvironmentInputDto>,
}

impl ReplaceEnvironmentsRequest {
    /// The core's input.
    pub fn into_input(self) -> Vec<EnvironmentInput> {
        self.environments.into_iter().map(EnvironmentInput::from).collect()
    }
}

/// A changeset profile override as stored and shown: secret names only.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProfileOverrideDto {
    /// `{"environment": "prod"}`, `{"environment_id": "…"}` or `{"profile_id": "…"}`.
    #[schema(schema_with = crate::dto::schemas::override_target)]
    pub target: OverrideTargetDto,
    /// Typed env var values it sets.
    pub env_vars: BTreeMap<String, EnvValueDto>,
    /// Names of the secrets it sets.
    pub secrets: Vec<String>,
}

impl From<&ProfileOverride> for ProfileOverrideDto {
    fn from(o: &ProfileOverride) -> Self {
        ProfileOverrideDto {
            target: OverrideTargetDto::from(&o.target),
            env_vars: env_vars_dto(&o.env_vars),
            secrets: o.secrets.iter().cloned().collect(),
        }
    }
}

/// What an override applies to, as written: exactly one of
/// `{"environment": "prod"}`, `{"environment_id": "…"}` or `{"profile_id": "…"}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum OverrideTargetDto {
    /// An environment by name.
    Environment(String),
    /// An environment by id.
    EnvironmentId(Uuid),
    /// A runtime profile by id.
    ProfileId(Uuid),
}

impl fmt::Display for OverrideTargetDto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OverrideTargetDto::Environment(name) => write!(f, "environment {name}"),
            OverrideTargetDto::EnvironmentId(id) => write!(f, "environment {id}"),
            OverrideTargetDto::ProfileId(id) => write!(f, "profile {id}"),
        }
    }
}

impl From<&OverrideTarget> for OverrideTargetDto {
    fn from(t: &OverrideTarget) -> Self {
        match t {
            OverrideTarget::Environment(name) => OverrideTargetDto::Environment(name.clone()),
            OverrideTarget::EnvironmentId(id) => OverrideTargetDto::EnvironmentId(id.0),
            OverrideTarget::ProfileId(id) => OverrideTargetDto::ProfileId(id.0),
        }
    }
}

impl From<OverrideTargetDto> for OverrideTarget {
    fn from(t: OverrideTargetDto) -> Self {
        match t {
            OverrideTargetDto::Environment(name) => OverrideTarget::Environment(name),
            OverrideTargetDto::EnvironmentId(id) => OverrideTarget::EnvironmentId(EnvironmentId(id)),
            OverrideTargetDto::ProfileId(id) => OverrideTarget::ProfileId(RuntimeProfileId(id)),
        }
    }
}

/// One override as written: a target, typed env var values and secret
/// plaintexts (sealed at once, never echoed). An override sets keys; it
/// never removes one nor changes a key's type.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileOverrideInputDto {
    /// `{"environment": "prod"}`, `{"environment_id": "…"}` or `{"profile_id": "…"}`.
    #[schema(schema_with = crate::dto::schemas::override_target)]
    pub target: OverrideTargetDto,
    /// Typed env var values, by name.
    #[serde(default, deserialize_with = "unique_map")]
    #[schema(value_type = BTreeMap<String, EnvValueDto>)]
    pub env_vars: BTreeMap<String, TypedValueDto>,
    /// Secret plaintexts, by name.
    #[serde(default, deserialize_with = "secret_map")]
    #[schema(value_type = BTreeMap<String, String>)]
    pub secrets: BTreeMap<String, SecretPlaintext>,
}

impl From<ProfileOverrideInputDto> for ProfileOverrideInput {
    fn from(o: ProfileOverrideInputDto) -> Self {
        ProfileOverrideInput { target: o.target.into(), env_vars: typed_inputs(o.env_vars), secrets: o.secrets }
    }
}

/// `PUT /api/apps/:appId/changesets/:csId/profile-overrides` (the author,
/// `draft` only): the body is an object `{"profile_overrides": [...]}` (a
/// bare list is refused); it replaces the whole list (at most 20, one per
/// target). An empty list removes every override.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutProfileOverridesRequest {
    /// The new overrides.
    pub profile_overrides: Vec<ProfileOverrideInputDto>,
}

impl PutProfileOverridesRequest {
    /// The core's input.
    pub fn into_input(self) -> Vec<ProfileOverrideInput> {
        self.profile_overrides.into_iter().map(ProfileOverrideInput::from).collect()
    }
}

/// Answer of `GET`/`PUT .../profile-overrides`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProfileOverridesDto {
    /// The overrides, in order (secret names only).
    pub profile_overrides: Vec<ProfileOverrideDto>,
}

impl ProfileOverridesDto {
    /// Converts a stored list.
    pub fn new(list: &[ProfileOverride]) -> Self {
        ProfileOverridesDto { profile_overrides: list.iter().map(ProfileOverrideDto::from).collect() }
    }
}

/// Body of `POST /api/admin/secrets/rotate` (operators). `Debug` redacts the key.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyRequest {
    /// The new master key, 64 hex characters.
    #[schema(schema_with = crate::dto::schemas::master_key)]
    pub new_master_key: String,
}

impl fmt::Debug for RotateKeyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RotateKeyRequest { new_master_key: [redacted] }")
    }
}

/// Answer of a master-key rotation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RotationDto {
    /// Sealed values re-wrapped.
    pub rewrapped: u64,
    /// Key id before.
    pub from_key_id: String,
    /// Key id after.
    pub to_key_id: String,
    /// What the operator must do next.
    pub next_step: String,
}

#[cfg(test)]
mod tests {
    //! The wire side of the profile inputs (moved from the core with the
    //! serde): unknown fields at every level, duplicate keys, unknown
    //! names, all refused before the core sees a value.
    use serde_json::json;

    use super::*;
    use crate::dto::parse_body;

    fn refused<T: serde::de::DeserializeOwned>(doc: &serde_json::Value) -> bool {
        parse_body::<T>(doc.to_string().as_bytes()).is_err()
    }

    #[test]
    fn create_and_patch_refuse_unknown_fields_at_every_level() {
        let base = json!({"name": "p", "kind": "persistent_env"});
        assert!(!refused::<CreateProfileRequest>(&base));
        for (path, extra) in [
            ("", json!({"revision": 3})),
            ("", json!({"kind2": 1})),
            ("database", json!({"engine": "postgres", "password": "x"})),
            ("migrations", json!({"applied_state": null})),
            ("lifecycle", json!({"ttl": 1})),
            ("env_vars", json!({"A": {"type": "string", "value": "a", "secret": true}})),
        ] {
            let mut doc = base.clone();
            if path.is_empty() {
                doc.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            } else {
                doc[path] = extra;
            }
            assert!(refused::<CreateProfileRequest>(&doc), "{doc}");
        }
        for bad in [
            json!({"kind": "temp_workspace"}),
            json!({"revision": 2}),
            json!({"database": {"engine": "postgres", "x": 1}}),
            json!({"migrations": {"applied_state": null}}),
            json!({"lifecycle": {"grace": 1}}),
            json!({"set_env_vars": {"A": {"type": "string", "value": "a", "x": 1}}}),
        ] {
            assert!(refused::<PatchProfileRequest>(&bad), "{bad}");
        }
        // Unknown names are refused too.
        assert!(refused::<CreateProfileRequest>(&json!({"name": "p", "kind": "persistent"})));
        assert!(refused::<CreateProfileRequest>(
            &json!({"name": "p", "kind": "persistent_env", "env_vars": {"A": {"type": "float", "value": 1}}})
        ));
        assert!(refused::<CreateProfileRequest>(
            &json!({"name": "p", "kind": "persistent_env", "env_vars": {"A": {"value": 1}}})
        ));
    }

    #[test]
    fn maps_refuse_a_key_given_twice() {
        let text = r#"{"name":"p","kind":"persistent_env","env_vars":{
            "A":{"type":"string","value":"1"},"A":{"type":"number","value":1}}}"#;
        assert!(parse_body::<CreateProfileRequest>(text.as_bytes()).is_err());
        assert!(serde_json::from_str::<CreateProfileRequest>(text).is_err(), "also outside parse_body");
        let text = r#"{"set_secrets":{"K":"a","K":"b"}}"#;
        assert!(serde_json::from_str::<PatchProfileRequest>(text).is_err());
    }

    #[test]
    fn an_out_of_range_number_never_parses() {
        let text = r#"{"name":"p","kind":"persistent_env","env_vars":{"N":{"type":"number","value":1e400}}}"#;
        assert!(parse_body::<CreateProfileRequest>(text.as_bytes()).is_err());
    }

    #[test]
    fn inputs_convert_into_the_core_values_and_never_print_secrets() {
        let r: CreateProfileRequest = parse_body(
            json!({"name": "p", "kind": "temp_workspace", "secrets": {"K": "super-secret"},
                   "lifecycle": {"grace_hours": 2}, "database": {"engine": "postgres"}})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert!(!format!("{r:?}").contains("super-secret"));
        let input = ProfileInput::from(r);
        assert!(!format!("{input:?}").contains("super-secret"));
        assert_eq!(input.secrets["K"].expose(), "super-secret");
        assert_eq!(input.lifecycle, Lifecycle { grace_hours: 2, ..Lifecycle::default() });
        assert_eq!(input.database, DatabaseSettings { engine: DatabaseEngine::Postgres, ..Default::default() });

        let p: PatchProfileRequest = parse_body(
            br#"{"base_url": null, "database": {"connection_ref": null, "base_profile_id": null},
                 "migrations": {"command": null}, "lifecycle": {"auto_cleanup": false}}"#,
        )
        .unwrap();
        let patch = ProfilePatch::from(p);
        assert_eq!(patch.base_url, Some(None));
        let db = patch.database.unwrap();
        assert_eq!((db.connection_ref, db.base_profile_id, db.engine), (Some(None), Some(None), None));
        assert_eq!(patch.migrations.unwrap().command, Some(None));
        assert_eq!(patch.lifecycle.unwrap().auto_cleanup, Some(false));
    }

    #[test]
    fn overrides_refuse_unknown_fields_and_targets() {
        let t = json!({"environment": "prod"});
        for bad in [
            json!({"target": t, "env_vars": {}, "unset": []}),
            json!({"target": {"env": "prod"}}),
            json!({"target": {"environment": "prod", "profile_id": Uuid::nil()}}),
            json!({"target": t, "env_vars": {"A": {"type": "string", "value": "a", "x": 0}}}),
        ] {
            assert!(refused::<PutProfileOverridesRequest>(&json!({"profile_overrides": [bad]})), "{bad}");
        }
        assert!(serde_json::from_str::<ProfileOverrideInputDto>(
            r#"{"target":{"environment":"prod"},"env_vars":{"A":{"type":"string","value":"1"},"A":{"type":"string","value":"2"}}}"#
        )
        .is_err());
        let ok: PutProfileOverridesRequest = parse_body(
            json!({"profile_overrides": [{"target": {"profile_id": Uuid::nil()}, "secrets": {"T": "plain-xyz"}}]})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        let input = ok.into_input();
        assert_eq!(input[0].target, OverrideTarget::ProfileId(RuntimeProfileId(Uuid::nil())));
        assert!(!format!("{input:?}").contains("plain-xyz"));
    }
}
