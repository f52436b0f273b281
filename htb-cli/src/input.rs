//! Reading the user's files: scripts, flows, and the errors they produce.

use std::io::Read;
use std::path::Path;

use htb::sim::{Flow, SimPacket};
use htb::tc::{Diagnostic, LoadOptions, Loaded, Severity};
use htb::{ClassId, Htb};

use crate::ScriptArgs;

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    /// Bad input: a script or flows line, a missing file, an impossible
    /// argument combination. Exit code 2. The text is a whole diagnostic.
    Input(String),
    /// An output could not be produced (e.g. the plot file). Exit code 1.
    Output(String),
}

impl CliError {
    pub fn message(&self) -> &str {
        match self {
            CliError::Input(m) | CliError::Output(m) => m,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Input(_) => 2,
            CliError::Output(_) => 1,
        }
    }
}

impl From<Diagnostic> for CliError {
    fn from(d: Diagnostic) -> Self {
        CliError::Input(d.to_string())
    }
}

/// The name diagnostics use for `path` (`<stdin>` for `-`).
pub fn display_name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}

/// Reads a text file (or standard input for `-`); a failure is a located
/// diagnostic, `FILE:1:1: error: cannot read file: REASON`.
pub fn read_text(path: &Path) -> Result<String, CliError> {
    let name = display_name(path);
    let res = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map(|_| s)
    } else if path.is_dir() {
        Err(std::io::Error::other("is a directory"))
    } else {
        std::fs::read_to_string(path)
    };
    res.map_err(|e| {
        CliError::Input(format!(
            "{name}:1:1: error: cannot read file: {}",
            io_reason(&e)
        ))
    })
}

/// "No such file or directory (os error 2)" -> "No such file or directory".
pub fn io_reason(e: &std::io::Error) -> String {
    let mut reason = e.to_string();
    if let Some(i) = reason.find(" (os error") {
        reason.truncate(i);
    }
    reason
}

/// Reads and loads a tc script.
pub fn load_script(args: &ScriptArgs) -> Result<Loaded<SimPacket>, CliError> {
    let text = read_text(&args.script)?;
    let opts = LoadOptions {
        ignore_unsupported: args.ignore_unsupported,
        link_rate: args.link,
        now: 0,
    };
    Ok(htb::tc::load(&text, &display_name(&args.script), &opts)?)
}

/// Prints the loader's warnings on stderr: tc's kernel warnings exactly as tc
/// prints them (`Warning: sch_htb: quantum of class 10001 is big. Consider
/// r2q change.`), skipped lines as located diagnostics.
pub fn print_warnings(warnings: &[Diagnostic]) {
    for w in warnings {
        if w.severity == Severity::Warning && w.message.starts_with("sch_htb: ") {
            eprintln!("Warning: {}", w.message);
        } else {
            eprintln!("{w}");
        }
    }
}

/// Where the kernel would put a packet sent with a given class id
/// (`skb->priority`), for a tree without filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dest {
    /// A leaf class.
    Leaf(ClassId),
    /// The direct queue (unshaped).
    Direct,
}

/// `htb_classify` without filters: a leaf id goes to that leaf; the qdisc
/// handle to the direct queue; anything else (0, an inner class, an unknown
/// id) to the default class if it is an existing leaf, else the direct queue.
pub fn destination(q: &Htb<SimPacket>, class: Option<ClassId>) -> Dest {
    let handle = q.handle();
    if let Some(c) = class {
        if c == handle {
            return Dest::Direct;
        }
        if q.class_info(c).is_some_and(|i| i.is_leaf) {
            return Dest::Leaf(c);
        }
    }
    let def = ClassId::new(handle.major(), q.config().default_class);
    if q.config().default_class != 0 && q.class_info(def).is_some_and(|i| i.is_leaf) {
        Dest::Leaf(def)
    } else {
        Dest::Direct
    }
}

/// The 1-based line of each flow in a flows file (`parse_flows` keeps one
/// flow per line that has anything before its `#`).
pub fn flow_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.split('#').next().unwrap_or("").trim().is_empty())
        .map(|(i, _)| i + 1)
        .collect()
}

/// Warnings for flows that name a class which is not a leaf of the tree: the
/// kernel accepts them (they fall through to the default class or the direct
/// queue), but they are usually a typo.
pub fn flow_warnings(
    q: &Htb<SimPacket>,
    flows: &[Flow],
    text: &str,
    file: &str,
) -> Vec<Diagnostic> {
    let lines = flow_lines(text);
    let mut out = Vec::new();
    for (i, f) in flows.iter().enumerate() {
        let Some(c) = f.class else { continue };
        if c == q.handle() {
            continue; // explicitly the direct queue, as in the kernel
        }
        let what = match q.class_info(c) {
            Some(info) if info.is_leaf => continue,
            Some(_) => format!("class {c} is an inner class"),
            None => format!("class {c} is not in the script"),
        };
        let goes = match destination(q, f.class) {
            Dest::Leaf(d) => format!("the default class {d}"),
            Dest::Direct => "the direct queue (unshaped)".to_string(),
        };
        let line = lines.get(i).copied().unwrap_or(1);
        let col = text
            .lines()
            .nth(line - 1)
            .and_then(|l| l.find(|ch: char| !ch.is_whitespace()))
            .map_or(1, |c| c + 1);
        out.push(Diagnostic {
            file: file.to_string(),
            line,
            col,
            severity: Severity::Warning,
            message: format!("{what}: its packets go to {goes}, as in the kernel"),
        });
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn flow_lines_skip_comments_and_blanks() {
        let t = "# head\n\n1:10 max 100\n  # x\n- 1mbit 100 # y\n";
        assert_eq!(flow_lines(t), vec![3, 5]);
        let flows = htb::sim::parse_flows(t, "f").unwrap();
        assert_eq!(flows.len(), 2);
    }

    #[test]
    fn destinations_follow_the_kernel() {
        let s = "tc qdisc add dev x root handle 1: htb default 20\n\
                 tc class add dev x parent 1: classid 1:1 htb rate 10mbit\n\
                 tc class add dev x parent 1:1 classid 1:10 htb rate 1mbit\n\
                 tc class add dev x parent 1:1 classid 1:20 htb rate 1mbit\n";
        let l = htb::tc::load::<SimPacket>(s, "t", &LoadOptions::default()).unwrap();
        let id = |s: &str| s.parse::<ClassId>().unwrap();
        let q = &l.htb;
        assert_eq!(destination(q, Some(id("1:10"))), Dest::Leaf(id("1:10")));
        assert_eq!(destination(q, Some(id("1:1"))), Dest::Leaf(id("1:20")));
        assert_eq!(destination(q, Some(id("1:99"))), Dest::Leaf(id("1:20")));
        assert_eq!(destination(q, None), Dest::Leaf(id("1:20")));
        assert_eq!(destination(q, Some(id("1:"))), Dest::Direct);
        let flows = htb::sim::parse_flows("1:10 max 100\n\n1:1 max 100\n", "f").unwrap();
        let w = flow_warnings(q, &flows, "1:10 max 100\n\n1:1 max 100\n", "f");
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].to_string(),
            "f:3:1: warning: class 1:1 is an inner class: its packets go to the default class 1:20, as in the kernel"
        );
    }
}
