//! `htb`: Linux HTB (`tc ... htb`) scripts shown as `tc` would, simulated in
//! virtual time, plotted; and the shaper's per-packet cost measured.
//!
//! Exit codes: 0 success, 1 an output could not be written, 2 bad input
//! (a bad script or flows line, a missing file, a bad argument).

mod bench;
mod input;
mod plot;
mod render;
mod route;
mod simulate;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Linux HTB traffic shaping, without a kernel: show, simulate and plot tc scripts.
#[derive(Parser, Debug)]
#[command(
    name = "htb",
    version,
    about,
    long_about = "Linux HTB traffic shaping, without a kernel.\n\n\
        Reads the `tc qdisc/class ... htb` scripts you already have, unchanged, and shows the tree \
        as `tc -s -d class show` prints it, simulates offered traffic through it in deterministic \
        virtual time (per-class rates, JSON, plots), or measures the shaper's per-packet cost.",
    after_help = "Examples:\n  \
        htb show examples/home-uplink.tc\n  \
        htb simulate examples/home-uplink.tc --traffic examples/home-uplink.flows --plot uplink.svg\n  \
        htb bench shaper --leaves 1024\n\n\
        Exit status: 0 ok, 1 an output file could not be written, 2 bad input."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show the class tree as `tc -s -d qdisc show` + `tc -s -d class show` print it.
    #[command(after_help = "Example:\n  \
        htb show examples/home-uplink.tc\n\n\
        Prints the htb qdisc line and one block per class, in tree order, exactly in tc's \
        format; tc's kernel warnings (\"Warning: sch_htb: quantum of class 10001 is big. \
        Consider r2q change.\") go to stderr. A bad line prints FILE:LINE:COL: error: MESSAGE \
        and exits with 2.")]
    Show(ShowArgs),
    /// Simulate offered traffic through a tc script in virtual time.
    #[command(after_help = "Example:\n  \
        htb simulate examples/home-uplink.tc --traffic examples/home-uplink.flows \\\n      \
        --duration 10s --warmup 1s --plot uplink.png\n\n\
        FLOWS has one flow per line: CLASSID OFFERED PACKET_SIZE [START [STOP]]\n  \
        1:10 max 1042          always backlogged, from t = 0\n  \
        1:20 4mbit 1500 2s 8s  paced at 4 Mbit/s between 2 s and 8 s\n  \
        - 300kbit 800          unclassified: the default class, or the direct queue\n\
        '#' starts a comment. PACKET_SIZE is the frame length HTB charges. A `max` flow keeps \
        --backlog packets queued, so it drains for a while after its STOP.\n\n\
        Output: each class as `tc -s class show` prints it, with the counters and the achieved \
        rate over the measured window (after the warm-up), then a summary table. --json prints \
        one JSON object instead: {\"duration_ns\", \"window_ns\", \"classes\": {\"1:10\": \
        {\"bytes\", \"packets\", \"drops\", \"overlimits\", \"lends\", \"borrows\", \"rate_bps\"}}, \
        \"direct\": {\"bytes\", \"packets\", \"rate_bps\"}}.")]
    Simulate(SimulateArgs),
    /// Measure the shaper (enqueue + dequeue per packet).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Longest-prefix match over a route table (the FIB, `htb::fib`).
    #[command(subcommand)]
    Route(RouteCommand),
}

#[derive(Subcommand, Debug)]
enum RouteCommand {
    /// Look up addresses: one line per address, `ADDRESS PREFIX/LEN VALUE` or `ADDRESS - -`.
    #[command(
        after_help = "ROUTES: lines `PREFIX/LEN VALUE [METRIC]` and/or `ip route show` / \
        `ip -6 route show` text; ADDRS: one address per line. IPv4 and IPv6 mix freely."
    )]
    Lookup {
        /// The route table.
        routes: PathBuf,
        /// The addresses.
        addrs: PathBuf,
    },
}

#[derive(Args, Debug)]
struct ScriptArgs {
    /// The tc script (`-` reads standard input).
    #[arg(value_name = "SCRIPT")]
    script: PathBuf,
    /// Downgrade unsupported lines (filters, other qdiscs) to warnings.
    #[arg(long)]
    ignore_unsupported: bool,
    /// Link rate (tc rate, e.g. 100mbit): the base of `N%` rates; for
    /// `simulate`, also the speed at which the link takes packets.
    #[arg(long, value_name = "RATE", value_parser = parse_rate_arg)]
    link: Option<u64>,
}

#[derive(Args, Debug)]
struct ShowArgs {
    #[command(flatten)]
    script: ScriptArgs,
}

#[derive(Args, Debug)]
struct SimulateArgs {
    #[command(flatten)]
    script: ScriptArgs,
    /// The offered traffic, one flow per line (see below).
    #[arg(long, short = 't', value_name = "FLOWS")]
    traffic: PathBuf,
    /// Simulated time (10s, 1.5s, 500ms; a bare number is seconds).
    #[arg(long, value_name = "TIME", default_value = "10s", value_parser = parse_duration_arg)]
    duration: u64,
    /// Time before the measured window starts.
    #[arg(long, value_name = "TIME", default_value = "1s", value_parser = parse_duration_arg)]
    warmup: u64,
    /// Width of one time-series point (for --plot).
    #[arg(long, value_name = "TIME", default_value = "100ms", value_parser = parse_duration_arg)]
    step: u64,
    /// Packets each `max` flow keeps queued (a blocking sender's socket
    /// buffer). Keep it at or below the leaf queue's limit: every refused
    /// top-up counts as a drop.
    #[arg(long, value_name = "PACKETS", default_value_t = htb::sim::SimConfig::default().backlog_depth,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    backlog: u32,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Draw per-class throughput over time to OUT.svg or OUT.png.
    #[arg(long, value_name = "OUT.svg|OUT.png")]
    plot: Option<PathBuf>,
    /// Classes to draw with --plot, comma-separated (default: all, or the 16
    /// busiest when there are more).
    #[arg(long, value_name = "CLASSID,...", value_delimiter = ',')]
    plot_classes: Vec<String>,
    /// Print only the summary table (not the tc-style class blocks).
    #[arg(long, conflicts_with = "json")]
    summary: bool,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Unthrottled enqueue + dequeue over a 3-level tree; prints one JSON line.
    #[command(after_help = "Example:\n  \
        htb bench shaper --leaves 1024 --packet-size 64 --packets 5000000\n  \
        {\"leaves\": 1024, \"packet_size\": 64, \"packets\": 5000000, \"ns_per_packet\": 61.3, \"mpps\": 16.3}\n\n\
        The workload of the criterion bench `unthrottled` (benches/): one top-level class, \
        inner classes, LEAVES leaves spread evenly under them; rate = ceil = 100 Gbit/s and \
        1 MB bursts everywhere, 4 packets of backlog per leaf; each step enqueues one packet \
        to a pseudo-random leaf and dequeues one. Virtual time advances so that the offered \
        load stays at 51.2 Gbit/s whatever the packet size, so nothing is ever throttled. \
        Build with --release for meaningful numbers.")]
    Shaper(BenchShaperArgs),
    /// FIB insert and lookup speed on a route table; prints one JSON line.
    Fib {
        /// The route table (as for `htb route lookup`).
        #[arg(long)]
        routes: PathBuf,
        /// The addresses to look up.
        #[arg(long)]
        addrs: PathBuf,
    },
}

#[derive(Args, Debug)]
struct BenchShaperArgs {
    /// Leaves in the tree (at most 65533, and the tree must fit 65535 class
    /// minors: 65025 = 255 x 255 is the criterion bench's largest).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65_533))]
    leaves: u32,
    /// Charged packet length in bytes.
    #[arg(long, value_name = "B", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65_535))]
    packet_size: u32,
    /// Packets timed (after an untimed warm-up of up to 1 000 000).
    #[arg(long, value_name = "P", default_value_t = 5_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    packets: u64,
}

fn parse_rate_arg(s: &str) -> Result<u64, String> {
    match htb::rate::parse_rate(s) {
        Ok(0) => Err("the rate must be greater than zero".into()),
        Ok(r) => Ok(r),
        Err(e) => Err(format!("{e} (a tc rate such as 100mbit)")),
    }
}

fn parse_duration_arg(s: &str) -> Result<u64, String> {
    htb::sim::parse_duration(s)
        .ok_or_else(|| format!("invalid time \"{s}\" (e.g. 10s, 1.5s, 100ms)"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Show(a) => render::show(&a.script),
        Command::Simulate(a) => simulate::run(&a),
        Command::Bench(BenchCommand::Shaper(a)) => bench::shaper(&a),
        Command::Bench(BenchCommand::Fib { routes, addrs }) => route::bench(&routes, &addrs),
        Command::Route(RouteCommand::Lookup { routes, addrs }) => route::lookup(&routes, &addrs),
    };
    match result {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                // `htb show x | head`: the reader went away; not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("htb: error: cannot write to standard output: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Err(e) => {
            eprintln!("{}", e.message());
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
