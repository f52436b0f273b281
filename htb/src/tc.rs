//! The `tc` script loader: a user's existing HTB script, unchanged, builds
//! the same tree in this crate.
//!
//! Accepted lines (iproute2 grammar, `../shared/docs/htb-semantics.md` §11):
//!
//! ```text
//! tc qdisc add|replace dev DEV root handle 1: htb [default N] [r2q N] [direct_qlen N]
//! tc qdisc del dev DEV root
//! tc qdisc add dev DEV parent 1:10 [handle 10:] pfifo|bfifo [limit N]
//! tc class add|change|replace|del dev DEV parent P classid C htb rate R [ceil R]
//!          [burst S] [cburst S] [prio N] [quantum N] [mtu N] [mpu N] [overhead N]
//!          [linklayer ethernet|atm|adsl]
//! ```
//!
//! with tc's aliases (`buffer`/`maxburst`, `cbuffer`/`cmaxburst`), keyword
//! prefixes (`pri` = `prio`), hex `default` and class ids, and the unit
//! grammar of [`crate::rate`]. Comments, blank lines, backslash
//! continuations, `NAME=value` assignments with `$NAME`/`${NAME}` expansion, a
//! leading `sudo`, `$TC` or `/sbin/tc`, and trailing `2>/dev/null`, `|| true`
//! are accepted. Anything else — an unsupported qdisc, a filter, a bad value —
//! is an error naming the file, line, column and token.
//!
//! ```
//! use htb::tc::{load, LoadOptions};
//! let script = "\
//! ## uplink
//! DEV=eth0
//! tc qdisc add dev $DEV root handle 1: htb default 20
//! tc class add dev $DEV parent 1: classid 1:1 htb rate 30mbit
//! tc class add dev $DEV parent 1:1 classid 1:10 htb rate 5mbit ceil 30mbit \\
//!     prio 0
//! tc class add dev $DEV parent 1:1 classid 1:20 htb rate 10mbit ceil 30mbit prio 1
//! ";
//! let loaded = load::<Vec<u8>>(script, "uplink.tc", &LoadOptions::default()).unwrap();
//! assert_eq!(loaded.dev, "eth0");
//! assert_eq!(loaded.htb.class_count(), 3);
//! assert_eq!(loaded.htb.config().default_class, 0x20);
//!
//! let err = load::<Vec<u8>>("tc qdisc add dev x root handle 1: sfq\n", "bad.tc", &LoadOptions::default())
//!     .unwrap_err();
//! assert_eq!(err.to_string(), "bad.tc:1:35: error: unsupported qdisc \"sfq\" (only htb, pfifo and bfifo)");
//! ```

use core::fmt;
use std::collections::HashMap;

use crate::class::{ClassConfig, ClassId};
use crate::error::HtbError;
use crate::leaf::{Fifo, Packet};
use crate::rate::{LinkLayer, parse_rate, parse_size};
use crate::sched::{Htb, QdiscConfig};

/// Options of the loader.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Downgrade unsupported lines (filters, other qdiscs) to warnings.
    pub ignore_unsupported: bool,
    /// Link speed in bytes per second, for rates given as `N%`.
    pub link_rate: Option<u64>,
    /// Time (ns) at which the classes are created.
    pub now: u64,
}

/// How bad a [`Diagnostic`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The script cannot be loaded.
    Error,
    /// Loaded, but tc would have printed a warning (or a line was skipped).
    Warning,
}

/// A message about a place in a script: `file:line:col: error: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// File name as given to the loader.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column of the token.
    pub col: usize,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {sev}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

impl std::error::Error for Diagnostic {}

/// A loaded script.
#[derive(Debug)]
pub struct Loaded<P> {
    /// The qdisc with every class and leaf queue of the script.
    pub htb: Htb<P>,
    /// The device the script configures.
    pub dev: String,
    /// Warnings: tc's quantum warnings and skipped lines.
    pub warnings: Vec<Diagnostic>,
}

/// One word of a logical line and where it came from.
#[derive(Clone, Debug)]
struct Tok {
    text: String,
    line: usize,
    col: usize,
}

struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, t: &Tok, msg: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.to_string(),
            line: t.line,
            col: t.col,
            severity: Severity::Error,
            message: msg.into(),
        }
    }
}

/// Loads a tc script into a new [`Htb`] with [`Fifo`] leaves.
pub fn load<P: Packet>(
    text: &str,
    file: &str,
    opts: &LoadOptions,
) -> Result<Loaded<P>, Diagnostic> {
    let ctx = Ctx { file };
    let mut vars: HashMap<String, String> = HashMap::new();
    let mut htb: Option<Htb<P>> = None;
    let mut dev: Option<String> = None;
    let mut warnings = Vec::new();
    let mut last_line = 1;

    for toks in logical_lines(text) {
        last_line = toks.first().map_or(last_line, |t| t.line);
        let toks = expand(&ctx, toks, &vars)?;
        let Some(first) = toks.first() else { continue };
        // NAME=value (shell assignment).
        if toks.len() == 1
            && let Some((k, v)) = first.text.split_once('=')
            && !k.is_empty()
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            vars.insert(k.to_string(), unquote(v).to_string());
            continue;
        }
        let mut rest: &[Tok] = &toks;
        while let Some(t) = rest.first() {
            if t.text == "sudo" || t.text == "command" || t.text == "exec" {
                rest = &rest[1..];
            } else {
                break;
            }
        }
        let Some(cmd) = rest.first() else { continue };
        if cmd.text != "tc" && !cmd.text.ends_with("/tc") && cmd.text != "$TC" {
            return Err(ctx.err(
                cmd,
                format!("expected a tc command, found \"{}\"", cmd.text),
            ));
        }
        rest = &rest[1..];
        // Global options such as -s, -d, -batch are not supported except the
        // harmless display ones.
        while let Some(t) = rest.first() {
            match t.text.as_str() {
                "-s" | "-d" | "-stats" | "-details" | "-p" | "-pretty" | "-iec" => {
                    rest = &rest[1..]
                }
                s if s.starts_with('-') => {
                    return Err(ctx.err(t, format!("unsupported tc option \"{s}\"")));
                }
                _ => break,
            }
        }
        let Some(obj) = rest.first() else {
            return Err(ctx.err(cmd, "tc needs an object (qdisc or class)"));
        };
        let unsupported = |msg: String, warnings: &mut Vec<Diagnostic>| {
            let mut d = ctx.err(obj, msg);
            if opts.ignore_unsupported {
                d.severity = Severity::Warning;
                warnings.push(d);
                Ok(())
            } else {
                Err(d)
            }
        };
        match obj.text.as_str() {
            "qdisc" => qdisc_line(
                &ctx,
                &rest[1..],
                obj,
                opts,
                &mut htb,
                &mut dev,
                &mut warnings,
            )?,
            "class" => class_line(
                &ctx,
                &rest[1..],
                obj,
                opts,
                &mut htb,
                &mut dev,
                &mut warnings,
            )?,
            "filter" | "f" | "action" | "actions" | "chain" => unsupported(
                format!(
                    "unsupported tc object \"{}\" (classify with class ids instead)",
                    obj.text
                ),
                &mut warnings,
            )?,
            other => unsupported(format!("unknown tc object \"{other}\""), &mut warnings)?,
        }
    }
    match (htb, dev) {
        (Some(htb), Some(dev)) => Ok(Loaded { htb, dev, warnings }),
        _ => Err(Diagnostic {
            file: file.to_string(),
            line: last_line,
            col: 1,
            severity: Severity::Error,
            message: "no \"tc qdisc add ... root ... htb\" line in the script".into(),
        }),
    }
}

fn unquote(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// Splits the script into logical lines of tokens: comments removed,
/// backslash continuations joined, trailing shell noise dropped.
fn logical_lines(text: &str) -> Vec<Vec<Tok>> {
    let mut out = Vec::new();
    let mut cur: Vec<Tok> = Vec::new();
    for (ln, raw) in text.lines().enumerate() {
        let mut body = raw;
        // A '#' starting a word begins a comment.
        let mut cut = body.len();
        let bytes = body.as_bytes();
        for (i, &c) in bytes.iter().enumerate() {
            if c == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
                cut = i;
                break;
            }
        }
        body = &body[..cut];
        let trimmed = body.trim_end();
        let cont = trimmed.ends_with('\\');
        let body = if cont {
            &trimmed[..trimmed.len() - 1]
        } else {
            trimmed
        };
        // Tokens with their 1-based columns (in characters).
        let mut col_chars = 0usize;
        let mut word = String::new();
        let mut start = 0usize;
        let mut quote: Option<char> = None;
        for ch in body.chars() {
            col_chars += 1;
            if let Some(q) = quote {
                word.push(ch);
                if ch == q {
                    quote = None;
                }
                continue;
            }
            if ch == '"' || ch == '\'' {
                quote = Some(ch);
                if word.is_empty() {
                    start = col_chars;
                }
                word.push(ch);
                continue;
            }
            if ch.is_whitespace() || ch == ';' {
                if !word.is_empty() {
                    cur.push(Tok {
                        text: std::mem::take(&mut word),
                        line: ln + 1,
                        col: start,
                    });
                }
                if ch == ';' {
                    out.push(std::mem::take(&mut cur));
                }
            } else {
                if word.is_empty() {
                    start = col_chars;
                }
                word.push(ch);
            }
        }
        if !word.is_empty() {
            cur.push(Tok {
                text: word,
                line: ln + 1,
                col: start,
            });
        }
        if !cont {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out.into_iter()
        .map(|mut toks| {
            // Drop trailing redirections and `|| true` style guards.
            if let Some(p) = toks
                .iter()
                .position(|t| t.text == "||" || t.text == "&&" || t.text == "|")
            {
                toks.truncate(p);
            }
            toks.retain(|t| {
                !(t.text.starts_with("2>") || t.text.starts_with(">") || t.text.starts_with("&>"))
                    && t.text != "/dev/null"
            });
            toks
        })
        .filter(|t| !t.is_empty())
        .collect()
}

/// Expands `$NAME` and `${NAME}` (and leaves `$TC` alone when unset).
fn expand(
    ctx: &Ctx,
    toks: Vec<Tok>,
    vars: &HashMap<String, String>,
) -> Result<Vec<Tok>, Diagnostic> {
    let mut out = Vec::with_capacity(toks.len());
    for t in toks {
        if !t.text.contains('$') {
            out.push(Tok {
                text: unquote(&t.text).to_string(),
                ..t
            });
            continue;
        }
        let s = unquote(&t.text);
        let mut res = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '$' {
                res.push(c);
                continue;
            }
            let braced = chars.peek() == Some(&'{');
            if braced {
                chars.next();
            }
            let mut name = String::new();
            while let Some(&n) = chars.peek() {
                if n.is_ascii_alphanumeric() || n == '_' {
                    name.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            if braced && chars.next() != Some('}') {
                return Err(ctx.err(&t, format!("bad variable reference in \"{}\"", t.text)));
            }
            match vars.get(&name) {
                Some(v) => res.push_str(v),
                None if name == "TC" => res.push_str("$TC"),
                None => {
                    return Err(ctx.err(&t, format!("variable ${name} is not set in the script")));
                }
            }
        }
        // A variable may hold several words (e.g. TC="sudo tc").
        for (col, w) in (t.col..).zip(res.split_whitespace()) {
            out.push(Tok {
                text: w.to_string(),
                line: t.line,
                col,
            });
        }
    }
    Ok(out)
}

/// iproute2's `matches(arg, keyword)`: `arg` is a non-empty prefix of `keyword`.
fn matches(arg: &str, keyword: &str) -> bool {
    !arg.is_empty() && keyword.starts_with(arg)
}

fn verb(ctx: &Ctx, t: Option<&Tok>, at: &Tok) -> Result<Verb, Diagnostic> {
    let Some(t) = t else {
        return Err(ctx.err(at, "missing command (add, change, replace or del)"));
    };
    Ok(match t.text.as_str() {
        s if matches(s, "add") => Verb::Add,
        s if matches(s, "change") => Verb::Change,
        s if matches(s, "replace") => Verb::Replace,
        s if matches(s, "delete") || s == "del" => Verb::Del,
        s => return Err(ctx.err(t, format!("unknown command \"{s}\""))),
    })
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Verb {
    Add,
    Change,
    Replace,
    Del,
}

/// The words before the qdisc/class kind: dev, parent, classid, handle, root.
struct Head<'t> {
    dev: Option<&'t Tok>,
    parent: Option<(&'t Tok, Option<ClassId>)>,
    classid: Option<(&'t Tok, ClassId)>,
    handle: Option<(&'t Tok, ClassId)>,
    kind: Option<&'t Tok>,
    args: &'t [Tok],
}

fn parse_id(ctx: &Ctx, t: &Tok) -> Result<ClassId, Diagnostic> {
    t.text.parse::<ClassId>().map_err(|_| {
        ctx.err(
            t,
            format!("invalid class id \"{}\" (expected hex major:minor)", t.text),
        )
    })
}

fn head<'t>(ctx: &Ctx, toks: &'t [Tok]) -> Result<Head<'t>, Diagnostic> {
    let mut h = Head {
        dev: None,
        parent: None,
        classid: None,
        handle: None,
        kind: None,
        args: &[],
    };
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        let next = || {
            toks.get(i + 1)
                .ok_or_else(|| ctx.err(t, format!("\"{}\" needs a value", t.text)))
        };
        match t.text.as_str() {
            "dev" => h.dev = Some(next()?),
            "root" => {
                h.parent = Some((t, None));
                i += 1;
                continue;
            }
            "parent" => {
                let v = next()?;
                h.parent = Some((
                    v,
                    if v.text == "root" {
                        None
                    } else {
                        Some(parse_id(ctx, v)?)
                    },
                ));
            }
            "classid" => {
                let v = next()?;
                h.classid = Some((v, parse_id(ctx, v)?));
            }
            "handle" => {
                let v = next()?;
                h.handle = Some((v, parse_id(ctx, v)?));
            }
            "estimator" | "est" | "ingress" | "clsact" | "stab" | "size" => {
                return Err(ctx.err(t, format!("unsupported option \"{}\"", t.text)));
            }
            _ => {
                h.kind = Some(t);
                h.args = &toks[i + 1..];
                return Ok(h);
            }
        }
        i += 2;
    }
    Ok(h)
}

fn check_dev<'t>(
    ctx: &Ctx,
    h: &Head<'t>,
    at: &Tok,
    dev: &mut Option<String>,
) -> Result<(), Diagnostic> {
    let Some(d) = h.dev else {
        return Err(ctx.err(at, "missing \"dev DEV\""));
    };
    match dev {
        Some(cur) if *cur != d.text => Err(ctx.err(
            d,
            format!(
                "this script configures \"{cur}\"; a second device \"{}\" is not supported",
                d.text
            ),
        )),
        _ => {
            *dev = Some(d.text.clone());
            Ok(())
        }
    }
}

fn value<'t>(ctx: &Ctx, args: &'t [Tok], i: usize) -> Result<&'t Tok, Diagnostic> {
    args.get(i + 1)
        .ok_or_else(|| ctx.err(&args[i], format!("\"{}\" needs a value", args[i].text)))
}

fn num<T: core::str::FromStr>(ctx: &Ctx, t: &Tok, what: &str) -> Result<T, Diagnostic> {
    t.text
        .parse()
        .map_err(|_| ctx.err(t, format!("invalid {what} \"{}\"", t.text)))
}

fn rate_value(ctx: &Ctx, t: &Tok, what: &str, opts: &LoadOptions) -> Result<u64, Diagnostic> {
    if let Some(p) = t.text.strip_suffix('%') {
        let Some(link) = opts.link_rate else {
            return Err(ctx.err(
                t,
                format!("{what} \"{}\" is a percentage: give the link rate", t.text),
            ));
        };
        let pct: f64 = p
            .parse()
            .ok()
            .filter(|v: &f64| (0.0..=100.0).contains(v))
            .ok_or_else(|| ctx.err(t, format!("invalid {what} \"{}\"", t.text)))?;
        return Ok((link as f64 * pct / 100.0) as u64);
    }
    parse_rate(&t.text).map_err(|e| ctx.err(t, format!("invalid {what} \"{}\": {e}", t.text)))
}

fn size_value(ctx: &Ctx, t: &Tok, what: &str) -> Result<u64, Diagnostic> {
    // burst may carry "/cell", which only fed the unused rate tables.
    let s = t.text.split('/').next().unwrap_or("");
    parse_size(s).map_err(|e| ctx.err(t, format!("invalid {what} \"{}\": {e}", t.text)))
}

fn htb_error(ctx: &Ctx, t: &Tok, e: HtbError) -> Diagnostic {
    ctx.err(t, e.to_string())
}

fn qdisc_line<P: Packet>(
    ctx: &Ctx,
    toks: &[Tok],
    at: &Tok,
    opts: &LoadOptions,
    htb: &mut Option<Htb<P>>,
    dev: &mut Option<String>,
    warnings: &mut Vec<Diagnostic>,
) -> Result<(), Diagnostic> {
    let v = verb(ctx, toks.first(), at)?;
    let h = head(ctx, &toks[1..])?;
    check_dev(ctx, &h, at, dev)?;
    let Some((ptok, parent)) = h.parent else {
        return Err(ctx.err(at, "missing \"root\" or \"parent\""));
    };
    if v == Verb::Del {
        if parent.is_none() {
            // `tc qdisc del dev X root`: start over.
            *htb = None;
            return Ok(());
        }
        return Err(ctx.err(ptok, "only the root qdisc can be deleted"));
    }
    let Some(kind) = h.kind else {
        return Err(ctx.err(at, "missing qdisc kind"));
    };
    match parent {
        None => {
            if kind.text != "htb" {
                return Err(ctx.err(
                    kind,
                    format!(
                        "unsupported qdisc \"{}\" (only htb, pfifo and bfifo)",
                        kind.text
                    ),
                ));
            }
            if v == Verb::Change {
                let Some(q) = htb.as_mut() else {
                    return Err(ctx.err(at, "no htb qdisc to change"));
                };
                let cfg = htb_qdisc_opts(ctx, h.args, q.config().clone())?;
                q.set_default_class(cfg.default_class);
                return Ok(());
            }
            if htb.is_some() && v == Verb::Add {
                return Err(ctx.err(
                    at,
                    "a root qdisc already exists (use replace, or del first)",
                ));
            }
            let handle = h.handle.map_or(1, |(_, id)| id.major());
            let (htok, hid) = h.handle.unzip();
            if let (Some(t), Some(id)) = (htok, hid)
                && (id.minor() != 0 || id.major() == 0)
            {
                return Err(ctx.err(t, format!("invalid qdisc handle \"{}\"", t.text)));
            }
            let cfg = htb_qdisc_opts(ctx, h.args, QdiscConfig::new(handle))?;
            *htb = Some(Htb::new(cfg));
            Ok(())
        }
        Some(pid) => {
            let Some(q) = htb.as_mut() else {
                return Err(ctx.err(ptok, "no htb root qdisc yet"));
            };
            // The kind first: a leaf qdisc we do not model is unsupported
            // whatever its options (`sfq perturb 10`), so that
            // `ignore_unsupported` downgrades the whole line.
            if !matches!(kind.text.as_str(), "pfifo" | "bfifo") {
                let msg = format!(
                    "unsupported leaf qdisc \"{}\" (only pfifo and bfifo)",
                    kind.text
                );
                let mut d = ctx.err(kind, msg);
                if opts.ignore_unsupported {
                    d.severity = Severity::Warning;
                    warnings.push(d);
                    return Ok(());
                }
                return Err(d);
            }
            let limit = match h.args {
                [] => None,
                [k, val] if matches(&k.text, "limit") => Some(val),
                [k, ..] => {
                    return Err(ctx.err(
                        k,
                        format!("unsupported {} option \"{}\"", kind.text, k.text),
                    ));
                }
            };
            let queue = if kind.text == "pfifo" {
                Fifo::new(match limit {
                    Some(t) => num(ctx, t, "limit")?,
                    None => crate::leaf::DEFAULT_FIFO_LIMIT,
                })
            } else {
                Fifo::bytes(match limit {
                    Some(t) => size_value(ctx, t, "limit")?,
                    // tx_queue_len * mtu, as the kernel's bfifo default.
                    None => crate::leaf::DEFAULT_FIFO_LIMIT as u64 * 1500,
                })
            };
            q.graft(pid, queue)
                .map(|_| ())
                .map_err(|e| htb_error(ctx, ptok, e))
        }
    }
}

fn htb_qdisc_opts(
    ctx: &Ctx,
    args: &[Tok],
    mut cfg: QdiscConfig,
) -> Result<QdiscConfig, Diagnostic> {
    let mut i = 0;
    while i < args.len() {
        let k = &args[i];
        match k.text.as_str() {
            s if matches(s, "default") => {
                let v = value(ctx, args, i)?;
                let t = v.text.trim_start_matches("0x");
                cfg.default_class = u16::from_str_radix(t, 16).map_err(|_| {
                    ctx.err(
                        v,
                        format!("invalid default class \"{}\" (hex minor)", v.text),
                    )
                })?;
            }
            s if matches(s, "r2q") => cfg.r2q = num(ctx, value(ctx, args, i)?, "r2q")?,
            "direct_qlen" => cfg.direct_qlen = num(ctx, value(ctx, args, i)?, "direct_qlen")?,
            "debug" => {
                value(ctx, args, i)?;
            }
            "offload" => return Err(ctx.err(k, "offload needs hardware; not supported here")),
            other => return Err(ctx.err(k, format!("unknown htb option \"{other}\""))),
        }
        i += 2;
    }
    Ok(cfg)
}

fn class_line<P: Packet>(
    ctx: &Ctx,
    toks: &[Tok],
    at: &Tok,
    opts: &LoadOptions,
    htb: &mut Option<Htb<P>>,
    dev: &mut Option<String>,
    warnings: &mut Vec<Diagnostic>,
) -> Result<(), Diagnostic> {
    let v = verb(ctx, toks.first(), at)?;
    let h = head(ctx, &toks[1..])?;
    check_dev(ctx, &h, at, dev)?;
    let Some(q) = htb.as_mut() else {
        return Err(ctx.err(at, "no htb root qdisc yet (add it before its classes)"));
    };
    let Some((ctok, id)) = h.classid else {
        return Err(ctx.err(at, "missing \"classid\""));
    };
    if v == Verb::Del {
        return q
            .delete_class(id, opts.now)
            .map(|_| ())
            .map_err(|e| htb_error(ctx, ctok, e));
    }
    let Some(kind) = h.kind else {
        return Err(ctx.err(at, "missing class kind (htb)"));
    };
    if kind.text != "htb" {
        return Err(ctx.err(kind, format!("unsupported class kind \"{}\"", kind.text)));
    }
    let cfg = class_opts(ctx, h.args, kind, opts)?;
    let exists = q.class_info(id).is_some();
    let applied = match (v, exists) {
        (Verb::Change, _) | (Verb::Replace, true) => q
            .change_class(id, &cfg)
            .map_err(|e| htb_error(ctx, ctok, e)),
        _ => {
            let Some((ptok, parent)) = h.parent else {
                return Err(ctx.err(at, "missing \"parent\""));
            };
            let parent = parent.unwrap_or(q.handle());
            q.add_class(id, parent, &cfg, opts.now)
                .map_err(|e| match e {
                    HtbError::UnknownParent(_) | HtbError::TooDeep(_) => htb_error(ctx, ptok, e),
                    e => htb_error(ctx, ctok, e),
                })
        }
    }?;
    if let Some(w) = applied.warning {
        warnings.push(Diagnostic {
            severity: Severity::Warning,
            message: format!("sch_htb: {w}"),
            ..ctx.err(ctok, "")
        });
    }
    Ok(())
}

fn class_opts(
    ctx: &Ctx,
    args: &[Tok],
    kind: &Tok,
    opts: &LoadOptions,
) -> Result<ClassConfig, Diagnostic> {
    let mut cfg = ClassConfig::new(0);
    let mut rate_seen: Option<&Tok> = None;
    let mut ceil_seen = false;
    let mut i = 0;
    while i < args.len() {
        let k = &args[i];
        let s = k.text.as_str();
        if matches(s, "prio") {
            cfg.prio = num(ctx, value(ctx, args, i)?, "prio")?;
        } else if matches(s, "mtu") {
            cfg.mtu = num(ctx, value(ctx, args, i)?, "mtu")?;
        } else if matches(s, "mpu") {
            cfg.mpu = size_value(ctx, value(ctx, args, i)?, "mpu")?
                .try_into()
                .map_err(|_| ctx.err(&args[i + 1], "mpu out of range"))?;
        } else if matches(s, "burst") || s == "buffer" || s == "maxburst" {
            cfg.burst = Some(size_value(ctx, value(ctx, args, i)?, "burst")?);
        } else if matches(s, "cburst") || s == "cbuffer" || s == "cmaxburst" {
            let v = value(ctx, args, i)?;
            let b = size_value(ctx, v, "cburst")?;
            if b > u32::MAX as u64 {
                return Err(ctx.err(v, "cburst out of range"));
            }
            cfg.cburst = Some(b);
        } else if s == "ceil" {
            if ceil_seen {
                return Err(ctx.err(k, "Double \"ceil\" spec"));
            }
            ceil_seen = true;
            cfg.ceil = Some(rate_value(ctx, value(ctx, args, i)?, "ceil", opts)?);
        } else if s == "rate" {
            if rate_seen.is_some() {
                return Err(ctx.err(k, "Double \"rate\" spec"));
            }
            rate_seen = Some(k);
            cfg.rate = rate_value(ctx, value(ctx, args, i)?, "rate", opts)?;
        } else if matches(s, "quantum") {
            cfg.quantum = Some(num(ctx, value(ctx, args, i)?, "quantum")?);
        } else if matches(s, "overhead") {
            cfg.overhead = num(ctx, value(ctx, args, i)?, "overhead")?;
        } else if matches(s, "linklayer") {
            let v = value(ctx, args, i)?;
            cfg.linklayer = match v.text.as_str() {
                "ethernet" => LinkLayer::Ethernet,
                "atm" | "adsl" => LinkLayer::Atm,
                _ => return Err(ctx.err(v, format!("unknown linklayer \"{}\"", v.text))),
            };
        } else {
            return Err(ctx.err(k, format!("unknown htb class option \"{s}\"")));
        }
        i += 2;
    }
    if rate_seen.is_none() {
        return Err(ctx.err(kind, "\"rate\" is required"));
    }
    if cfg.rate == 0 {
        return Err(ctx.err(rate_seen.unwrap(), "rate must be greater than zero"));
    }
    Ok(cfg)
}

#[cfg(test)]
mod test {
    use super::*;

    fn load_ok(s: &str) -> Loaded<u32> {
        load(s, "t.tc", &LoadOptions::default()).unwrap()
    }
    fn load_err(s: &str) -> String {
        load::<u32>(s, "t.tc", &LoadOptions::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn full_script_with_shell_noise() {
        let l = load_ok(
            "#!/bin/sh\n\
             DEV=eth0\n\
             TC=\"sudo tc\"\n\
             $TC qdisc del dev $DEV root 2>/dev/null || true\n\
             $TC qdisc add dev ${DEV} root handle 1: htb default 30 r2q 5\n\
             tc class add dev eth0 parent 1: classid 1:1 htb rate 100mbit burst 15k  # top\n\
             tc class add dev eth0 parent 1:1 classid 1:30 htb rate 1mbit \\\n\
                ceil 100mbit pri 3 quan 3000 cbuffer 3200\n\
             tc qdisc add dev eth0 parent 1:30 handle 30: pfifo limit 50\n",
        );
        assert_eq!(l.dev, "eth0");
        let q = &l.htb;
        assert_eq!(q.config().default_class, 0x30);
        assert_eq!(q.config().r2q, 5);
        let c = q.class_info("1:30".parse().unwrap()).unwrap();
        assert_eq!((c.prio, c.quantum, c.ceil), (3, 3000, 12_500_000));
        // 1:1 is a leaf when created: 100mbit / r2q 5 > 200000 warns, as tc does.
        assert_eq!(l.warnings.len(), 1);
        assert!(l.warnings[0].message.contains("class 10001 is big"));
    }

    #[test]
    fn quantum_warning_has_a_location() {
        let l = load_ok(
            "tc qdisc add dev x root handle 1: htb\ntc class add dev x parent 1: classid 1:1 htb rate 30mbit\n",
        );
        assert_eq!(
            l.warnings[0].to_string(),
            "t.tc:2:38: warning: sch_htb: quantum of class 10001 is big. Consider r2q change."
        );
    }

    #[test]
    fn errors_name_the_token() {
        assert_eq!(
            load_err(
                "tc qdisc add dev x root handle 1: htb\ntc class add dev x parent 1: classid 1:1 htb rate 5mbiz\n"
            ),
            "t.tc:2:51: error: invalid rate \"5mbiz\": unknown unit in \"5mbiz\""
        );
        assert_eq!(
            load_err(
                "tc qdisc add dev x root handle 1: htb\ntc class add dev x parent 1:5 classid 1:1 htb rate 5mbit\n"
            ),
            "t.tc:2:27: error: parent class 1:5 does not exist"
        );
        assert_eq!(
            load_err(
                "tc qdisc add dev x root handle 1: htb\ntc class add dev x parent 1: classid 1:1 htb ceil 5mbit\n"
            ),
            "t.tc:2:42: error: \"rate\" is required"
        );
        assert_eq!(
            load_err(
                "tc qdisc add dev x root handle 1: htb\ntc filter add dev x parent 1: u32 match ip dport 22 0xffff flowid 1:10\n"
            ),
            "t.tc:2:4: error: unsupported tc object \"filter\" (classify with class ids instead)"
        );
        assert_eq!(
            load_err("echo hi\n"),
            "t.tc:1:1: error: expected a tc command, found \"echo\""
        );
        assert_eq!(
            load_err("tc class add dev x parent 1: classid 1:1 htb rate 1mbit\n"),
            "t.tc:1:4: error: no htb root qdisc yet (add it before its classes)"
        );
        assert_eq!(
            load_err("tc qdisc add dev $D root handle 1: htb\n"),
            "t.tc:1:18: error: variable $D is not set in the script"
        );
        assert_eq!(
            load_err("# nothing\n"),
            "t.tc:1:1: error: no \"tc qdisc add ... root ... htb\" line in the script"
        );
    }

    #[test]
    fn unsupported_lines_can_be_downgraded() {
        let l = load::<u32>(
            "tc qdisc add dev x root handle 1: htb\ntc filter add dev x parent 1: protocol ip u32\n",
            "t.tc",
            &LoadOptions {
                ignore_unsupported: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(l.warnings.len(), 1);
        assert_eq!(l.warnings[0].severity, Severity::Warning);
    }

    /// A leaf qdisc we do not model is unsupported whatever its options:
    /// the LARTC line `sfq perturb 10` names the qdisc in the error, and
    /// `ignore_unsupported` downgrades it (the leaf keeps its pfifo).
    #[test]
    fn unsupported_leaf_qdiscs_with_options_can_be_downgraded() {
        let s = "tc qdisc add dev x root handle 1: htb\n\
                 tc class add dev x parent 1: classid 1:10 htb rate 1mbit\n\
                 tc qdisc add dev x parent 1:10 handle 10: sfq perturb 10\n\
                 tc qdisc add dev x parent 1:10 handle 11: fq_codel limit 100 target 5ms\n\
                 tc qdisc add dev x parent 1:10 handle 12: pfifo limit 7\n";
        assert_eq!(
            load_err(s),
            "t.tc:3:43: error: unsupported leaf qdisc \"sfq\" (only pfifo and bfifo)"
        );
        let opts = LoadOptions {
            ignore_unsupported: true,
            ..Default::default()
        };
        let mut l = load::<u32>(s, "t.tc", &opts).unwrap();
        let w: Vec<String> = l.warnings.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            w,
            [
                "t.tc:3:43: warning: unsupported leaf qdisc \"sfq\" (only pfifo and bfifo)",
                "t.tc:4:43: warning: unsupported leaf qdisc \"fq_codel\" (only pfifo and bfifo)"
            ]
        );
        // The pfifo line still applies: its limit of 7 refuses the 8th packet.
        let leaf = ClassId::new(1, 0x10);
        for p in 0..7 {
            l.htb.enqueue(p, leaf).unwrap();
        }
        assert!(l.htb.enqueue(7, leaf).is_err());
        // An option pfifo does not have is still an error.
        let bad = "tc qdisc add dev x root handle 1: htb\n\
                   tc class add dev x parent 1: classid 1:10 htb rate 1mbit\n\
                   tc qdisc add dev x parent 1:10 pfifo perturb 10\n";
        assert_eq!(
            load_err(bad),
            "t.tc:3:38: error: unsupported pfifo option \"perturb\""
        );
    }

    #[test]
    fn percent_rates_need_a_link_rate() {
        let s = "tc qdisc add dev x root handle 1: htb\ntc class add dev x parent 1: classid 1:1 htb rate 50%\n";
        assert!(load_err(s).contains("percentage"));
        let l = load::<u32>(
            s,
            "t.tc",
            &LoadOptions {
                link_rate: Some(12_500_000),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            l.htb.class_info("1:1".parse().unwrap()).unwrap().rate,
            6_250_000
        );
    }

    #[test]
    fn change_replace_and_delete() {
        let l = load_ok(
            "tc qdisc add dev x root handle 1: htb\n\
             tc class add dev x parent 1: classid 1:1 htb rate 10mbit\n\
             tc class add dev x parent 1:1 classid 1:10 htb rate 1mbit\n\
             tc class replace dev x parent 1:1 classid 1:20 htb rate 2mbit\n\
             tc class replace dev x parent 1:1 classid 1:20 htb rate 3mbit\n\
             tc class change dev x classid 1:10 htb rate 4mbit\n\
             tc class del dev x classid 1:10\n",
        );
        let q = &l.htb;
        assert!(q.class_info("1:10".parse().unwrap()).is_none());
        assert_eq!(q.class_info("1:20".parse().unwrap()).unwrap().rate, 375_000);
    }
}
