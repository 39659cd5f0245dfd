//! Limits on parsing user content: a document may not be larger, deeper or
//! made of more nodes than [`ParseLimits`] allows, and a whole diff may not
//! spend more work than its budget.
//!
//! Invariants:
//! - the work of a parse is bounded *while* it happens, not checked after:
//!   YAML is read through [`BudgetedYaml`], which counts every node it
//!   builds — aliases included, so an alias bomb (`&a [*b, *b, ...]`) stops
//!   at the budget instead of expanding — and refuses to nest deeper than
//!   the limit; JSON and TOML are bounded by their size (their parsers build
//!   no more nodes than bytes) and checked for depth and nodes after;
//! - the budget is counted in nodes, not seconds, so the same file always
//!   gets the same answer whatever the machine's load: a diff that flipped
//!   between key level and file level with the load would be a worse
//!   contract (`docs/decisions/0011-content-limits.md`);
//! - exceeding a limit is never an error: the caller reports the file at
//!   file level with [`super::FileLevelReason::TooComplex`] and says which
//!   limit it hit.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use serde_yaml_ng::value::{Tag, TaggedValue};
use serde_yaml_ng::{Mapping, Value as Yaml};

/// Limits on one side of one file, and on a whole diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest side parsed by key, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of maps and lists.
    pub max_depth: u32,
    /// Most nodes (scalars, maps, lists) one side may build, aliases expanded.
    pub max_nodes: u64,
    /// Most nodes all the files of one diff may build together; files past
    /// it are reported at file level.
    pub max_diff_nodes: u64,
}

impl ParseLimits {
    /// The limits every parse of user content uses.
    pub const DEFAULT: ParseLimits =
        ParseLimits { max_bytes: 2 * 1024 * 1024, max_depth: 64, max_nodes: 200_000, max_diff_nodes: 2_000_000 };
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits::DEFAULT
    }
}

/// Why a parse stopped short: the limit and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TooComplex(pub(super) String);

impl TooComplex {
    pub(super) fn depth(max: u32) -> Self {
        TooComplex(format!("nested deeper than {max} levels"))
    }

    pub(super) fn nodes(max: u64) -> Self {
        TooComplex(format!("more than {max} values (aliases expanded)"))
    }

    pub(super) fn bytes(max: usize) -> Self {
        TooComplex(format!("larger than {} KiB", max / 1024))
    }

    pub(super) fn diff_budget(max: u64) -> Self {
        TooComplex(format!("the diff's budget of {max} values is spent on earlier files"))
    }
}

impl fmt::Display for TooComplex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Marker the budgeted deserializer's errors start with, so the parser can
/// tell "over budget" from "not valid YAML".
const OVER_BUDGET: &str = "conman: over budget: ";

/// The nodes left and the current depth of one parse.
pub(super) struct Budget {
    nodes_left: Cell<u64>,
    depth: Cell<u32>,
    max_depth: u32,
    max_nodes: u64,
}

impl Budget {
    pub(super) fn new(max_nodes: u64, max_depth: u32) -> Self {
        Budget { nodes_left: Cell::new(max_nodes), depth: Cell::new(0), max_depth, max_nodes }
    }

    /// The nodes this budget has handed out so far.
    pub(super) fn spent(&self) -> u64 {
        self.max_nodes - self.nodes_left.get()
    }

    /// Spends one value.
    fn spend(&self) -> Result<(), TooComplex> {
        let left = self.nodes_left.get().checked_sub(1).ok_or_else(|| TooComplex::nodes(self.max_nodes))?;
        self.nodes_left.set(left);
        Ok(())
    }

    /// Spends one value and goes one level deeper.
    fn descend(&self) -> Result<(), TooComplex> {
        self.spend()?;
        let depth = self.depth.get() + 1;
        if depth > self.max_depth {
            return Err(TooComplex::depth(self.max_depth));
        }
        self.depth.set(depth);
        Ok(())
    }

    /// [`Self::spend`] as a deserializer error the parser recognises.
    fn take<E: de::Error>(&self) -> Result<(), E> {
        self.spend().map_err(over_budget_error)
    }

    /// [`Self::descend`] as a deserializer error the parser recognises.
    fn enter<E: de::Error>(&self) -> Result<(), E> {
        self.descend().map_err(over_budget_error)
    }

    fn leave(&self) {
        self.depth.set(self.depth.get().saturating_sub(1));
    }

    /// The limit a deserializer error names, when it is one of ours.
    pub(super) fn over_budget(message: &str) -> Option<TooComplex> {
        message.find(OVER_BUDGET).map(|at| {
            let rest = &message[at + OVER_BUDGET.len()..];
            // serde_yaml_ng appends " at line L column C" to custom errors.
            let reason = rest.split(" at line ").next().unwrap_or(rest);
            TooComplex(reason.trim().to_owned())
        })
    }
}

/// A deserializer error carrying `limit`, marked so the parser can tell it
/// from "not valid YAML".
fn over_budget_error<E: de::Error>(limit: TooComplex) -> E {
    E::custom(format!("{OVER_BUDGET}{limit}"))
}

/// Checks a parsed JSON tree against the depth and node limits.
pub(super) fn check_tree(value: &serde_json::Value, budget: &Budget) -> Result<(), TooComplex> {
    match value {
        serde_json::Value::Array(items) => {
            budget.descend()?;
            items.iter().try_for_each(|v| check_tree(v, budget))?;
            budget.leave();
        }
        serde_json::Value::Object(map) => {
            budget.descend()?;
            map.values().try_for_each(|v| check_tree(v, budget))?;
            budget.leave();
        }
        _ => budget.spend()?,
    }
    Ok(())
}

/// Deserializes one YAML value the way `serde_yaml_ng::Value` does — tags
/// kept, duplicate keys refused — spending one node of the budget per
/// value it builds.
pub(super) struct BudgetedYaml<'b>(pub(super) &'b Budget);

impl<'de> DeserializeSeed<'de> for BudgetedYaml<'_> {
    type Value = Yaml;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Yaml, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BudgetedYaml<'_> {
    type Value = Yaml;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Yaml, E> {
        self.0.take()?;
        Ok(Yaml::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Yaml, E> {
        self.0.take()?;
        Ok(Yaml::Number(i.into()))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Yaml, E> {
        self.0.take()?;
        Ok(Yaml::Number(u.into()))
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Yaml, E> {
        self.0.take()?;
        Ok(Yaml::Number(f.into()))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Yaml, E> {
        self.0.take()?;
        Ok(Yaml::String(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Yaml, E> {
        self.0.take()?;
        Ok(Yaml::String(s))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Yaml, E> {
        self.0.take()?;
        Ok(Yaml::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Yaml, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Yaml, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Yaml, A::Error> {
        self.0.enter()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(BudgetedYaml(self.0))? {
            items.push(item);
        }
        self.0.leave();
        Ok(Yaml::Sequence(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Yaml, A::Error> {
        self.0.enter()?;
        let mut mapping = Mapping::new();
        while let Some(key) = map.next_key_seed(BudgetedYaml(self.0))? {
            if mapping.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate entry {}", key_text(&key))));
            }
            let value = map.next_value_seed(BudgetedYaml(self.0))?;
            mapping.insert(key, value);
        }
        self.0.leave();
        Ok(Yaml::Mapping(mapping))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Yaml, A::Error> {
        self.0.enter()?;
        let (tag, contents): (String, _) = data.variant()?;
        if tag.is_empty() {
            return Err(de::Error::custom("empty YAML tag is not allowed"));
        }
        let value = contents.newtype_variant_seed(BudgetedYaml(self.0))?;
        self.0.leave();
        Ok(Yaml::Tagged(Box::new(TaggedValue { tag: Tag::new(tag), value })))
    }
}

/// A duplicate map key as serde_yaml_ng's own message spells it.
fn key_text(key: &Yaml) -> String {
    match key {
        Yaml::Null => "with null key".to_owned(),
        Yaml::Bool(b) => format!("with key `{b}`"),
        Yaml::Number(n) => format!("with key {n}"),
        Yaml::String(s) => format!("with key {s:?}"),
        Yaml::Sequence(_) | Yaml::Mapping(_) | Yaml::Tagged(_) => "in YAML map".to_owned(),
    }
}
