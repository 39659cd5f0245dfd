//! The frozen public surface of `conman-core`: `docs/contracts/conman-core.surface.rs.txt`
//! must equal what [`render`] prints from the crate's sources.
//!
//! Other Rust tools embed the core, so its state machines, port traits and
//! service signatures are a contract like the HTTP one. The snapshot lists
//! every `pub` item outside `#[cfg(test)]` — types with their public fields
//! and variants, traits with every method (required or provided), free
//! functions, constants, re-exports, the public methods of each type's
//! inherent impls and the trait impls of public types — with bodies and
//! documentation stripped, in a stable order. Module-level macros (their
//! definitions and invocations) are listed whole, since the items they
//! generate are invisible to a parser.
//!
//! Invariants: the snapshot does not depend on which file an item sits in
//! below its nearest public module (items of private modules are reachable
//! only through a `pub use`, which `unreachable_pub` enforces, so they are
//! listed under the public module that re-exports them), nor on source
//! order (items and methods are sorted); it changes only when the surface
//! does. The frozen file is only ever written by `cargo xtask freeze`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
use syn::{Attribute, Fields, ImplItem, Item, TraitItem, Visibility};

use crate::Failure;

/// Where the frozen surface lives, relative to the workspace root.
pub(crate) const SURFACE_PATH: &str = "docs/contracts/conman-core.surface.rs.txt";

/// The crate whose surface is frozen.
const CORE_SRC: &str = "crates/conman-core/src";

const FREEZE_HINT: &str = "conman-core's public surface changed: if you meant it, run `cargo xtask freeze` and \
     commit docs/contracts/conman-core.surface.rs.txt (embedders see the change)";

/// Gate step: compare the rendered surface with the frozen one.
pub(crate) fn check(root: &Path) -> Result<(), Failure> {
    let rendered = render(&root.join(CORE_SRC))?;
    let frozen = fs::read_to_string(root.join(SURFACE_PATH)).map_err(|e| {
        Failure::new(
            format!("cannot read {SURFACE_PATH}: {e}"),
            "freeze the surface once with `cargo xtask freeze` and commit it",
        )
    })?;
    if frozen == rendered {
        println!("{SURFACE_PATH}: matches conman-core's sources ({} lines)", rendered.lines().count());
        return Ok(());
    }
    println!("--- {SURFACE_PATH} (frozen)\n+++ conman-core sources (rendered)");
    println!("{}", line_diff(&frozen, &rendered));
    Err(Failure::new(format!("{SURFACE_PATH} differs from conman-core's public surface"), FREEZE_HINT))
}

/// `cargo xtask freeze`: write the rendered surface to the frozen path.
pub(crate) fn freeze(root: &Path) -> Result<(), Failure> {
    let rendered = render(&root.join(CORE_SRC))?;
    let path = root.join(SURFACE_PATH);
    let before = fs::read_to_string(&path).ok();
    if before.as_deref() == Some(rendered.as_str()) {
        println!("{SURFACE_PATH}: unchanged ({} lines)", rendered.lines().count());
        return Ok(());
    }
    fs::write(&path, &rendered).map_err(|e| {
        Failure::new(format!("cannot write {SURFACE_PATH}: {e}"), "check permissions on docs/contracts/")
    })?;
    match before {
        None => println!("{SURFACE_PATH}: created ({} lines)", rendered.lines().count()),
        Some(before) => println!("{SURFACE_PATH}: updated\n{}", line_diff(&before, &rendered)),
    }
    println!("review and commit {SURFACE_PATH}");
    Ok(())
}

/// The surface of the crate rooted at `src/lib.rs`, as text.
pub(crate) fn render(src: &Path) -> Result<String, Failure> {
    let mut surface = Surface::default();
    let lib = src.join("lib.rs");
    let file = parse(&lib)?;
    surface.collect_types(&file.items);
    walk(&lib, &file.items, "crate", "crate", &mut surface, &mut Vec::new())?;
    // The type names are known only after every module was read; impls of
    // types that are not public are dropped here.
    Ok(surface.print())
}

fn parse(path: &Path) -> Result<syn::File, Failure> {
    let text = fs::read_to_string(path).map_err(|e| {
        Failure::new(format!("cannot read {}: {e}", path.display()), "the core's module tree is broken")
    })?;
    syn::parse_file(&text)
        .map_err(|e| Failure::new(format!("cannot parse {}: {e}", path.display()), "fix the syntax error first"))
}

/// Everything collected from the crate, keyed for a stable order.
#[derive(Default)]
struct Surface {
    /// Public module path → rendered items, sorted by (name, text).
    modules: BTreeMap<String, BTreeSet<(String, String)>>,
    /// Self type (as written) → rendered public methods and constants.
    inherent: BTreeMap<String, BTreeSet<(String, String)>>,
    /// Rendered trait impl headers of public types.
    trait_impls: BTreeSet<String>,
    /// Names of every public type and trait, wherever defined.
    public_types: BTreeSet<String>,
    /// Impls seen, kept until every public type is known.
    pending_impls: Vec<syn::ItemImpl>,
}

impl Surface {
    /// Records the names of public types in `items`, recursively through inline modules.
    fn collect_types(&mut self, items: &[Item]) {
        for item in items {
            let name = match item {
                Item::Struct(s) if is_pub(&s.vis) => s.ident.to_string(),
                Item::Enum(e) if is_pub(&e.vis) => e.ident.to_string(),
                Item::Trait(t) if is_pub(&t.vis) => t.ident.to_string(),
                Item::Type(t) if is_pub(&t.vis) => t.ident.to_string(),
                Item::Union(u) if is_pub(&u.vis) => u.ident.to_string(),
                Item::Mod(m) => {
                    if let Some((_, inline)) = &m.content {
                        self.collect_types(inline);
                    }
                    continue;
                }
                _ => continue,
            };
            self.public_types.insert(name);
        }
    }

    fn add(&mut self, module: &str, name: String, item: Item) {
        self.modules.entry(module.to_owned()).or_default().insert((name, print_item(item)));
    }

    fn print(mut self) -> String {
        for imp in std::mem::take(&mut self.pending_impls) {
            self.add_impl(imp);
        }
        let mut out = String::from(
            "// conman-core's public surface, frozen: written by `cargo xtask freeze`, compared by\n\
             // `cargo xtask gate`. Bodies and docs are stripped; items are sorted by name.\n",
        );
        for (module, items) in &self.modules {
            out.push_str(&format!("\n// ---- mod {module}\n"));
            for (_, text) in items {
                out.push_str(text);
            }
        }
        for (self_ty, methods) in &self.inherent {
            out.push_str(&format!("\n// ---- {self_ty}\n"));
            for (_, text) in methods {
                out.push_str(text);
            }
        }
        out.push_str("\n// ---- trait impls of public types\n");
        for header in &self.trait_impls {
            out.push_str(header);
            out.push('\n');
        }
        out
    }

    fn add_impl(&mut self, mut imp: syn::ItemImpl) {
        let Some(self_name) = type_name(&imp.self_ty) else { return };
        if !self.public_types.contains(&self_name) {
            return;
        }
        imp.attrs = kept_attrs(&imp.attrs);
        if imp.trait_.is_some() {
            imp.items.clear();
            let text = print_item(Item::Impl(imp));
            self.trait_impls.insert(text.trim_end().to_owned());
            return;
        }
        let header = {
            let mut bare = imp.clone();
            bare.items.clear();
            bare.attrs.clear();
            print_item(Item::Impl(bare)).trim_end().trim_end_matches("{}").trim_end().to_owned()
        };
        for item in std::mem::take(&mut imp.items) {
            let (name, text) = match item {
                ImplItem::Fn(mut f) if is_pub(&f.vis) => {
                    f.attrs = kept_attrs(&f.attrs);
                    f.block = empty_block();
                    let name = f.sig.ident.to_string();
                    let mut holder = imp.clone();
                    holder.attrs.clear();
                    holder.items = vec![ImplItem::Fn(f)];
                    (name, inner_of(&print_item(Item::Impl(holder))))
                }
                ImplItem::Const(mut c) if is_pub(&c.vis) => {
                    c.attrs = kept_attrs(&c.attrs);
                    let name = c.ident.to_string();
                    let mut holder = imp.clone();
                    holder.attrs.clear();
                    holder.items = vec![ImplItem::Const(c)];
                    (name, inner_of(&print_item(Item::Impl(holder))))
                }
                _ => continue,
            };
            self.inherent.entry(header.clone()).or_default().insert((name, text));
        }
    }
}

/// Walks `items` of the module at `path` (`public` is the nearest public
/// module path, where items of private modules are listed).
fn walk(
    file: &Path,
    items: &[Item],
    module: &str,
    public: &str,
    surface: &mut Surface,
    stack: &mut Vec<String>,
) -> Result<(), Failure> {
    for item in items {
        if is_test_only(item_attrs(item)) {
            continue;
        }
        match item.clone() {
            Item::Mod(m) => {
                let name = m.ident.to_string();
                let child_module = format!("{module}::{name}");
                let child_public = if is_pub(&m.vis) { child_module.clone() } else { public.to_owned() };
                let cfg = kept_attrs(&m.attrs);
                if is_pub(&m.vis) && !cfg.is_empty() {
                    let marker =
                        syn::ItemMod { attrs: cfg, content: None, semi: Some(Default::default()), ..m.clone() };
                    surface.add(public, name.clone(), Item::Mod(marker));
                }
                stack.push(name.clone());
                match &m.content {
                    Some((_, inline)) => walk(file, inline, &child_module, &child_public, surface, stack)?,
                    None => {
                        let child = module_file(file, &name, stack.len() == 1)?;
                        let parsed = parse(&child)?;
                        surface.collect_types(&parsed.items);
                        walk(&child, &parsed.items, &child_module, &child_public, surface, stack)?;
                    }
                }
                stack.pop();
            }
            Item::Impl(imp) => surface.pending_impls.push(imp),
            other => {
                if let Some((name, rendered)) = public_item(other) {
                    surface.add(public, name, rendered);
                }
            }
        }
    }
    Ok(())
}

/// The file of module `name` declared in `parent` (`top` when the parent is `lib.rs`).
fn module_file(parent: &Path, name: &str, top: bool) -> Result<PathBuf, Failure> {
    let dir = parent.parent().expect("a source file has a directory");
    let stem = parent.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let base = if top || stem == "mod" || stem == "lib" { dir.to_path_buf() } else { dir.join(stem) };
    for candidate in [base.join(format!("{name}.rs")), base.join(name).join("mod.rs")] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(Failure::new(
        format!("module `{name}` declared in {} has no file", parent.display()),
        "xtask's surface reader follows `mod x;` to x.rs or x/mod.rs only",
    ))
}

/// The item, stripped to its surface, when it is public.
fn public_item(item: Item) -> Option<(String, Item)> {
    Some(match item {
        Item::Struct(mut s) if is_pub(&s.vis) => {
            s.attrs = kept_attrs(&s.attrs);
            let had_private = strip_fields(&mut s.fields, true);
            if had_private {
                s.attrs.push(syn::parse_quote!(#[doc = " (has private fields)"]));
            }
            (s.ident.to_string(), Item::Struct(s))
        }
        Item::Enum(mut e) if is_pub(&e.vis) => {
            e.attrs = kept_attrs(&e.attrs);
            for variant in &mut e.variants {
                variant.attrs = kept_attrs(&variant.attrs);
                strip_fields(&mut variant.fields, false);
            }
            (e.ident.to_string(), Item::Enum(e))
        }
        Item::Trait(mut t) if is_pub(&t.vis) => {
            t.attrs = kept_attrs(&t.attrs);
            for item in &mut t.items {
                match item {
                    TraitItem::Fn(f) => {
                        f.attrs = kept_attrs(&f.attrs);
                        if f.default.take().is_some() {
                            f.attrs.push(syn::parse_quote!(#[doc = " (provided)"]));
                        }
                    }
                    TraitItem::Type(ty) => ty.attrs = kept_attrs(&ty.attrs),
                    TraitItem::Const(c) => c.attrs = kept_attrs(&c.attrs),
                    _ => {}
                }
            }
            (t.ident.to_string(), Item::Trait(t))
        }
        Item::Fn(mut f) if is_pub(&f.vis) => {
            f.attrs = kept_attrs(&f.attrs);
            f.block = Box::new(empty_block());
            (f.sig.ident.to_string(), Item::Fn(f))
        }
        Item::Const(mut c) if is_pub(&c.vis) => {
            c.attrs = kept_attrs(&c.attrs);
            (c.ident.to_string(), Item::Const(c))
        }
        Item::Static(mut s) if is_pub(&s.vis) => {
            s.attrs = kept_attrs(&s.attrs);
            (s.ident.to_string(), Item::Static(s))
        }
        Item::Type(mut t) if is_pub(&t.vis) => {
            t.attrs = kept_attrs(&t.attrs);
            (t.ident.to_string(), Item::Type(t))
        }
        Item::Use(mut u) if is_pub(&u.vis) => {
            u.attrs = kept_attrs(&u.attrs);
            let name = print_item(Item::Use(u.clone()));
            (name, Item::Use(u))
        }
        // A module-level macro — a `macro_rules!` definition or an invocation
        // such as `typed_id! { ... }` — can define public items the parser
        // cannot see through: it is listed whole, tokens and all.
        Item::Macro(mut m) => {
            m.attrs = kept_attrs(&m.attrs);
            m.mac.tokens = without_docs(std::mem::take(&mut m.mac.tokens));
            let name = match &m.ident {
                Some(ident) => ident.to_string(),
                None => print_item(Item::Macro(m.clone())),
            };
            (name, Item::Macro(m))
        }
        _ => return None,
    })
}

/// Drops non-public fields (of a struct; variant fields are always public)
/// and every field's docs; true when a field was dropped.
fn strip_fields(fields: &mut Fields, struct_fields: bool) -> bool {
    let mut dropped = false;
    let keep = |f: &syn::Field| !struct_fields || is_pub(&f.vis);
    match fields {
        Fields::Named(named) => {
            let before = named.named.len();
            named.named = std::mem::take(&mut named.named).into_pairs().filter(|p| keep(p.value())).collect();
            dropped = named.named.len() != before;
            named.named.iter_mut().for_each(|f| f.attrs = kept_attrs(&f.attrs));
        }
        Fields::Unnamed(unnamed) => {
            let before = unnamed.unnamed.len();
            unnamed.unnamed = std::mem::take(&mut unnamed.unnamed).into_pairs().filter(|p| keep(p.value())).collect();
            dropped = unnamed.unnamed.len() != before;
            unnamed.unnamed.iter_mut().for_each(|f| f.attrs = kept_attrs(&f.attrs));
        }
        Fields::Unit => {}
    }
    dropped
}

/// Attributes that change what an embedder can do: derives, cfg gates,
/// serde's wire shape, `non_exhaustive`, `repr`, `async_trait`, `must_use`.
fn kept_attrs(attrs: &[Attribute]) -> Vec<Attribute> {
    const KEPT: [&str; 8] = ["derive", "cfg", "cfg_attr", "serde", "non_exhaustive", "repr", "async_trait", "must_use"];
    attrs
        .iter()
        .filter(|a| {
            let path = a.path();
            KEPT.iter().any(|k| path.is_ident(k)) || path.segments.last().is_some_and(|s| s.ident == "async_trait")
        })
        .cloned()
        .collect()
}

/// `tokens` without `#[doc = ...]` attributes (doc comments), at any depth.
fn without_docs(tokens: TokenStream) -> TokenStream {
    let mut out = Vec::new();
    let mut iter = tokens.into_iter().peekable();
    while let Some(tree) = iter.next() {
        match tree {
            TokenTree::Punct(p) if p.as_char() == '#' => {
                let is_doc = matches!(iter.peek(), Some(TokenTree::Group(g))
                    if g.delimiter() == Delimiter::Bracket
                        && matches!(g.stream().into_iter().next(), Some(TokenTree::Ident(i)) if i == "doc"));
                if is_doc {
                    iter.next();
                } else {
                    out.push(TokenTree::Punct(p));
                }
            }
            TokenTree::Group(g) => {
                let mut group = Group::new(g.delimiter(), without_docs(g.stream()));
                group.set_span(g.span());
                out.push(TokenTree::Group(group));
            }
            other => out.push(other),
        }
    }
    out.into_iter().collect()
}

fn is_pub(vis: &Visibility) -> bool {
    matches!(vis, Visibility::Public(_))
}

fn is_test_only(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|a| a.path().is_ident("cfg") && a.parse_args::<syn::Ident>().is_ok_and(|ident| ident == "test"))
}

fn item_attrs(item: &Item) -> &[Attribute] {
    match item {
        Item::Const(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::Fn(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Macro(i) => &i.attrs,
        Item::Mod(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Trait(i) => &i.attrs,
        Item::Type(i) => &i.attrs,
        Item::Union(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

/// The last path segment of a type (`Conman` of `crate::services::Conman<S>`).
fn type_name(ty: &syn::Type) -> Option<String> {
    match ty {
        syn::Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        syn::Type::Reference(r) => type_name(&r.elem),
        _ => None,
    }
}

fn empty_block() -> syn::Block {
    syn::Block { brace_token: Default::default(), stmts: Vec::new() }
}

fn print_item(item: Item) -> String {
    prettyplease::unparse(&syn::File { shebang: None, attrs: Vec::new(), items: vec![item] })
}

/// The lines between an impl's braces, dedented by one level.
fn inner_of(printed: &str) -> String {
    let lines: Vec<&str> = printed.lines().collect();
    let inner = &lines[1..lines.len().saturating_sub(1)];
    inner.iter().map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l))).collect()
}

/// The lines only in `old` (`-`) and only in `new` (`+`), at most 40 of each.
fn line_diff(old: &str, new: &str) -> String {
    let old_lines: BTreeSet<&str> = old.lines().collect();
    let new_lines: BTreeSet<&str> = new.lines().collect();
    let mut out = Vec::new();
    for (sign, only) in [('-', old_lines.difference(&new_lines)), ('+', new_lines.difference(&old_lines))] {
        let only: Vec<&&str> = only.collect();
        for line in only.iter().take(40) {
            out.push(format!("{sign} {line}"));
        }
        if only.len() > 40 {
            out.push(format!("{sign} ... ({} more lines)", only.len() - 40));
        }
    }
    if out.is_empty() {
        out.push("(same lines, different order or repetition)".to_owned());
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn surface_of(files: &[(&str, &str)]) -> String {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("xtask-surface-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for (path, text) in files {
            let path = dir.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        let rendered = render(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        rendered
    }

    #[test]
    fn lists_public_items_with_bodies_docs_and_private_parts_stripped() {
        let rendered = surface_of(&[
            ("lib.rs", "//! Crate.\npub mod a;\nmod hidden;\npub use hidden::Reexported;\n"),
            (
                "a.rs",
                "/// Doc.\n#[derive(Debug)]\npub struct S { pub x: u32, secret: u8 }\n\
                 fn private() {}\npub fn visible(n: u32) -> u32 { n + 1 }\n\
                 pub trait T { fn req(&self); fn prov(&self) { } }\n\
                 impl S { pub fn new() -> S { S { x: 0, secret: 0 } } fn internal(&self) {} }\n\
                 impl T for S { fn req(&self) {} }\n\
                 #[cfg(test)] mod tests { pub fn not_listed() {} }\n",
            ),
            ("hidden.rs", "pub struct Reexported;\n"),
        ]);
        assert!(rendered.contains("pub struct S {\n    pub x: u32,\n}"), "{rendered}");
        assert!(rendered.contains("(has private fields)"), "{rendered}");
        assert!(!rendered.contains("secret"), "{rendered}");
        assert!(rendered.contains("pub fn visible(n: u32) -> u32 {}"), "{rendered}");
        assert!(!rendered.contains("private()"), "{rendered}");
        assert!(rendered.contains("fn req(&self);"), "{rendered}");
        assert!(rendered.contains("/// (provided)\n    fn prov(&self);"), "{rendered}");
        assert!(rendered.contains("// ---- impl S\npub fn new() -> S {}"), "{rendered}");
        assert!(!rendered.contains("internal"), "{rendered}");
        assert!(rendered.contains("impl T for S {}"), "{rendered}");
        assert!(!rendered.contains("not_listed"), "{rendered}");
        assert!(!rendered.contains("Doc."), "{rendered}");
        // An item of a private module is listed under the public module that re-exports it.
        assert!(rendered.contains("// ---- mod crate\npub struct Reexported;"), "{rendered}");
    }

    #[test]
    fn source_order_and_file_placement_do_not_change_the_surface() {
        let one = surface_of(&[("lib.rs", "pub mod m { pub fn b() {} pub fn a() {} }\n")]);
        let two = surface_of(&[
            ("lib.rs", "pub mod m;\n"),
            ("m/mod.rs", "mod x;\npub use x::*;\npub fn a() {}\n"),
            ("m/x.rs", "pub fn b() {}\n"),
        ]);
        let strip_use = |s: &str| s.lines().filter(|l| !l.starts_with("pub use")).collect::<Vec<_>>().join("\n");
        assert_eq!(strip_use(&one), strip_use(&two));
    }

    #[test]
    fn a_changed_signature_changes_the_surface() {
        let before = surface_of(&[("lib.rs", "pub trait Store { fn get(&self, id: u32) -> bool; }\n")]);
        let after = surface_of(&[("lib.rs", "pub trait Store { fn get(&self, id: u64) -> bool; }\n")]);
        assert_ne!(before, after);
        assert!(line_diff(&before, &after).contains("+     fn get(&self, id: u64) -> bool;"));
    }
}
