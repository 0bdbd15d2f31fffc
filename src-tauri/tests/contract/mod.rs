//! The IPC contract as TypeScript, generated from the Rust source: one wrapper per command
//! registered in `with_commands` (name, arguments and result read from its `#[tauri::command]`
//! function), the event names with their payload types, and the error codes. Written to
//! `ui/src/lib/bindings/ipc.ts` next to ts-rs's types; `scripts/check-bindings.sh` fails when the
//! committed copy differs.

use std::{collections::BTreeSet, fmt::Write as _, path::Path};

use syn::{FnArg, GenericArgument, Item, Pat, PathArguments, ReturnType, Type};

/// One event: its name on the wire and the TypeScript type of its payload.
pub struct Event {
    pub name: &'static str,
    pub payload: String,
}

/// The arguments a command takes from the UI, and what it resolves to.
struct Command {
    name: String,
    docs: Vec<String>,
    args: Vec<(String, String)>,
    result: String,
}

/// `ipc.ts` for the app whose crate root is `crate_dir`; `error_codes` in declaration order.
pub fn typescript(crate_dir: &Path, events: &[Event], error_codes: &[String]) -> String {
    let lib = std::fs::read_to_string(crate_dir.join("src/lib.rs")).unwrap();
    let start = lib
        .find("generate_handler![")
        .expect("no generate_handler! in lib.rs");
    let end = start + lib[start..].find(']').unwrap();
    // Line comments inside the list are not command paths.
    let list: String = lib[start + "generate_handler![".len()..end]
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let paths: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let mut imports = BTreeSet::new();
    let mut commands = Vec::new();
    for path in paths {
        let segments: Vec<&str> = path.split("::").collect();
        let (module, name) = match segments.as_slice() {
            ["commands", module, name] => (*module, *name),
            _ => panic!("{path}: commands are registered as commands::<module>::<name>"),
        };
        let file = crate_dir.join(format!("src/commands/{module}.rs"));
        let source = std::fs::read_to_string(&file).unwrap();
        let ast = syn::parse_file(&source).unwrap();
        let function = ast
            .items
            .iter()
            .find_map(|item| match item {
                Item::Fn(f) if f.sig.ident == name => Some(f),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no fn {name} in {}", file.display()));
        let mut args = Vec::new();
        for input in &function.sig.inputs {
            let FnArg::Typed(arg) = input else { continue };
            let Pat::Ident(ident) = &*arg.pat else {
                panic!("{name}: arguments are plain names")
            };
            if is_injected(&arg.ty) {
                continue;
            }
            let ident = ident.ident.to_string();
            args.push((
                camel(ident.trim_start_matches('_')),
                ts(&arg.ty, &mut imports),
            ));
        }
        let result = match &function.sig.output {
            ReturnType::Type(_, ty) => match first_generic(ty, "Result") {
                Some(ok) => ts(ok, &mut imports),
                None => panic!("{name}: commands return Result<T, AppError>"),
            },
            ReturnType::Default => "void".into(),
        };
        let docs = function
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("doc"))
            .filter_map(|a| match &a.meta {
                syn::Meta::NameValue(nv) => match &nv.value {
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }) => Some(s.value().trim().to_string()),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        commands.push(Command {
            name: name.to_string(),
            docs,
            args,
            result,
        });
    }
    for event in events {
        if event.payload.chars().next().is_some_and(char::is_uppercase) {
            imports.insert(event.payload.clone());
        }
    }
    imports.insert("ErrorCode".into());

    let mut out = String::from(
        "// Generated from the Rust source by src-tauri/tests/contract (scripts/check-bindings.sh). \
         Do not edit.\n\n",
    );
    for name in &imports {
        let _ = writeln!(out, "import type {{ {name} }} from './{name}';");
    }
    out.push_str(
        "\n/** How a command is sent: `invoke` from `@tauri-apps/api/core`, or a wrapper of it. */\n\
         export type Invoke = <T>(cmd: string, args?: Record<string, unknown>) => Promise<T>;\n\n\
         /** Every command of the app, typed, over `invoke`. */\n\
         export function commands(invoke: Invoke) {\n  return {\n",
    );
    for c in &commands {
        if !c.docs.is_empty() {
            let _ = writeln!(out, "    /** {} */", c.docs.join(" ").replace("*/", "* /"));
        }
        let params: Vec<String> = c.args.iter().map(|(n, t)| format!("{n}: {t}")).collect();
        let names: Vec<&str> = c.args.iter().map(|(n, _)| n.as_str()).collect();
        let call_args = if names.is_empty() {
            String::new()
        } else {
            format!(", {{ {} }}", names.join(", "))
        };
        let _ = writeln!(
            out,
            "    {}: ({}) => invoke<{}>('{}'{}),",
            camel(&c.name),
            params.join(", "),
            c.result,
            c.name,
            call_args
        );
    }
    out.push_str("  };\n}\n\n/** The events the app emits, by name, with their payloads. */\nexport type Events = {\n");
    for e in events {
        let _ = writeln!(out, "  '{}': {};", e.name, e.payload);
    }
    out.push_str("};\n\n/** Every error code, in the order Rust declares them. */\nexport const ERROR_CODES: readonly ErrorCode[] = [\n");
    for code in error_codes {
        let _ = writeln!(out, "  '{code}',");
    }
    out.push_str("];\n");
    out
}

/// Arguments tauri fills in itself (state, the app, the calling window).
fn is_injected(ty: &Type) -> bool {
    last_ident(ty).is_some_and(|i| {
        matches!(
            i.as_str(),
            "State" | "AppHandle" | "Window" | "WebviewWindow" | "Webview"
        )
    })
}

fn last_ident(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        Type::Reference(r) => last_ident(&r.elem),
        _ => None,
    }
}

fn first_generic<'a>(ty: &'a Type, outer: &str) -> Option<&'a Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != outer {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

/// The TypeScript of a Rust argument or result type; named types are ts-rs twins (imported).
fn ts(ty: &Type, imports: &mut BTreeSet<String>) -> String {
    if let Type::Tuple(t) = ty
        && t.elems.is_empty()
    {
        return "void".into();
    }
    if let Some(inner) = first_generic(ty, "Option") {
        return format!("{} | null", ts(inner, imports));
    }
    if let Some(inner) = first_generic(ty, "Vec") {
        return format!("{}[]", ts(inner, imports));
    }
    let name = last_ident(ty).unwrap_or_else(|| panic!("unsupported type in a command"));
    match name.as_str() {
        "String" | "str" | "PathBuf" => "string".into(),
        "bool" => "boolean".into(),
        "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "f32" | "f64" => {
            "number".into()
        }
        _ => {
            imports.insert(name.clone());
            name
        }
    }
}

/// `snake_case` → `camelCase` (as tauri renames command arguments, and as the UI names calls).
fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}
