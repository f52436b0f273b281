//! `htb`: Linux HTB (`tc ... htb`) scripts shown as `tc` would, simulated in
//! virtual time, plotted; the shaper's per-packet cost measured; captures
//! reassembled and fragmented as the Linux kernel does it.
//!
//! Exit codes: 0 success, 1 an output could not be written, 2 bad input
//! (a bad script or flows line, a missing file, a bad argument).

mod bench;
mod frag;
mod input;
mod pcap;
mod plot;
mod reasm;
mod render;
mod route;
mod simulate;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use htb::reasm::Policy;

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
        htb bench shaper --leaves 1024\n  \
        htb reasm capture.pcap reassembled.pcap --policy linux\n  \
        htb frag --mtu 1280 capture.pcap fragmented.pcap\n\n\
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
    /// Reassemble the fragmented IP datagrams of a capture (pcap or pcapng).
    #[command(after_help = REASM_HELP)]
    Reasm(ReasmArgs),
    /// Fragment the IP packets of a capture that exceed an MTU, as Linux does.
    #[command(after_help = FRAG_HELP)]
    Frag(FragArgs),
    /// Measure the shaper, the FIB, reassembly or fragmentation.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Longest-prefix match over a route table (the FIB, `htb::fib`).
    #[command(subcommand)]
    Route(RouteCommand),
}

const REASM_HELP: &str = "Examples:\n  \
    htb reasm capture.pcap reassembled.pcap\n  \
    htb reasm capture.pcapng out.pcapng --policy bsd --json\n\n\
    Reads a pcap or pcapng capture (link types Ethernet with or without VLAN tags, raw IP \
    101/228/229, Linux cooked SLL/SLL2, BSD loopback) and feeds every IPv4 and IPv6 packet to \
    the reassembler (htb::reasm), using each packet's capture time as the clock, so queues \
    time out as in the kernel (30 s IPv4, 60 s IPv6). Packets that are not fragments, and \
    non-IP frames, are written unchanged, in order. A datagram whose last missing fragment \
    arrives is written at that fragment's place, with its timestamp and link header, as the \
    kernel delivers it (lengths, fragment fields and checksum rewritten; IPv6 fragment \
    header removed). Fragments held, refused (duplicate, overlap, ...) or left incomplete \
    at the end are not written: the counters say how many. Fragments on different \
    interfaces or VLANs never join.\n\n\
    Malformed IP packets (bad header, bad checksum, truncated by the snaplen, an IPv6 \
    fragment the kernel refuses with ICMPv6 parameter problem) are counted and passed \
    through unchanged; --drop-malformed leaves them out instead.\n\n\
    Output: the packet counts, then the kernel's counters (ReasmReqds, ReasmOKs, ReasmFails, \
    ReasmTimeout, ReasmOverlaps) for IPv4, IPv6 and both. --json prints one object: \
    {\"packets_in\", \"packets_out\", \"not_ip\", \"not_fragments\", \"reassembled\", \
    \"malformed\", \"fragments_dropped\": {\"duplicate\", \"overlap\", ...}, \"timeouts\", \
    \"incomplete_at_end\", \"ReasmReqds\", ..., \"ipv4\": {...}, \"ipv6\": {...}}.\n\n\
    Exit status: 0 ok, 1 the output could not be written, 2 bad input (missing, not a \
    capture, corrupt, unsupported link type).";

const FRAG_HELP: &str = "Examples:\n  \
    htb frag --mtu 1500 capture.pcap fragmented.pcap\n  \
    htb frag --mtu 576 --ignore-df capture.pcap out.pcap --json\n\n\
    Every IPv4 or IPv6 packet longer than MTU (bytes of IP packet, link header not counted) \
    is replaced by its fragments, each behind a copy of the original link header and with \
    the original timestamp, cut as Linux cuts them (IPv4: (MTU - header) & ~7 data bytes \
    per fragment, options copied per their copy flag; IPv6: a fragment header after the \
    per-fragment headers). Shorter packets and non-IP frames are written unchanged.\n\n\
    An IPv4 packet with DF set is not fragmented (the kernel would answer ICMP \
    fragmentation needed): it is counted under FragFails and passed through unchanged, \
    unless --ignore-df. IPv6 needs an MTU of at least 1280; below that IPv6 packets are \
    counted and passed through. Malformed IP packets are counted and passed through \
    (--drop-malformed leaves them out). IPv6 identifications are random per datagram, as \
    Linux makes them, or --ipv6-id N, N+1, ... for reproducible output.\n\n\
    Output: the counts and the kernel's counters FragOKs, FragFails, FragCreates; --json \
    prints them as one object.\n\n\
    Exit status: 0 ok, 1 the output could not be written, 2 bad input.";

#[derive(Args, Debug)]
struct ReasmArgs {
    /// The capture to read (pcap or pcapng).
    #[arg(value_name = "IN")]
    input: PathBuf,
    /// The capture to write (the input's format).
    #[arg(value_name = "OUT")]
    output: PathBuf,
    /// Overlap policy: linux (today's kernel), or an IDS target-based one.
    #[arg(long, default_value = "linux", value_parser = parse_policy_arg,
          value_name = "linux|first|last|bsd|bsd-right|linux-legacy|windows|solaris")]
    policy: Policy,
    /// Leave malformed IP packets out of the output instead of passing them through.
    #[arg(long)]
    drop_malformed: bool,
    /// Print one JSON object instead of the text.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct FragArgs {
    /// Largest IP packet to send, in bytes (at least 68; IPv6 needs 1280).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(68..=65_535))]
    mtu: u32,
    /// The capture to read (pcap or pcapng).
    #[arg(value_name = "IN")]
    input: PathBuf,
    /// The capture to write (the input's format).
    #[arg(value_name = "OUT")]
    output: PathBuf,
    /// Fragment IPv4 packets even when DF is set (the kernel's ignore_df).
    #[arg(long)]
    ignore_df: bool,
    /// IPv6 identification of the first datagram fragmented, then +1 each
    /// (default: random per datagram, as Linux).
    #[arg(long, value_name = "ID")]
    ipv6_id: Option<u32>,
    /// Leave malformed IP packets out of the output instead of passing them through.
    #[arg(long)]
    drop_malformed: bool,
    /// Print one JSON object instead of the text.
    #[arg(long)]
    json: bool,
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
        With --burst N the same traffic goes through enqueue_burst / dequeue_burst N packets \
        at a time (the criterion bench `unthrottled_burst32`). \
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
    /// Reassembly speed (push per fragment); prints one JSON line.
    #[command(after_help = "Examples:\n  \
        htb bench reasm\n  \
        {\"datagram_size\": 4000, \"mtu\": 1500, \"interleave\": 1, \"policy\": \"linux\", \
        \"datagrams\": 200000, \"fragments\": 600000, \"ns_per_fragment\": 60.1, \"mfragments_per_s\": 16.64, \"cpu_ns_per_fragment\": 58.9}\n  \
        htb bench reasm --interleave 256 --policy bsd\n  \
        htb bench reasm --interleave 256 --owned\n\n\
        IPv4/UDP datagrams of DATAGRAM_SIZE bytes are fragmented for MTU beforehand (4000 B at \
        1500: 3 fragments); the timed loop only pushes them into a Reassembler and gives each \
        completed datagram's buffer back (Reassembler::recycle). --interleave N sends N \
        datagrams' fragments round-robin (first fragments of all N, then the second ones, ...), \
        each of the N from its own source address, so N queues are open at once. The same \
        pre-built fragments are pushed again and again (a completed datagram's queue is gone, \
        so a repeat starts a new one); one untimed pass warms up. The criterion bench \
        `reasm` (benches/) and the DPDK peer (benches/peers/run_frag.sh) time the same \
        workloads. cpu_ns_per_fragment (where the kernel reports the thread's on-CPU time, \
        /proc/thread-self/schedstat) leaves out the time slices other tasks took on a shared \
        machine. --owned hands each fragment's buffer over with Reassembler::push_owned \
        (kept, not copied, under the linux policy) and gets the buffers back from each \
        completed chain, as a NIC driver recycles its receive buffers. \
        Build with --release for meaningful numbers.")]
    Reasm(BenchReasmArgs),
    /// Fragmentation speed (per fragment written); prints one JSON line.
    #[command(after_help = "Example:\n  \
        htb bench frag --datagram-size 8000\n  \
        {\"datagram_size\": 8000, \"mtu\": 1500, \"datagrams\": 1000000, \"fragments\": 6000000, \
        \"ns_per_fragment\": 20.5, \"mfragments_per_s\": 48.78, \"cpu_ns_per_fragment\": 20.1}\n\n\
        One IPv4/UDP datagram (DF clear) is cut into fragments for MTU, again and again: \
        Fragmenter::new, then next_into a reused buffer until done (each fragment's header \
        and checksum written, its data copied). Build with --release.")]
    Frag(BenchFragArgs),
}

#[derive(Args, Debug)]
struct BenchReasmArgs {
    /// Size of each IP datagram in bytes (header included).
    #[arg(long, value_name = "B", default_value_t = 4000, value_parser = clap::value_parser!(u32).range(28..=65_535))]
    datagram_size: u32,
    /// MTU the datagrams are fragmented for.
    #[arg(long, value_name = "B", default_value_t = 1500, value_parser = clap::value_parser!(u32).range(68..=65_535))]
    mtu: u32,
    /// Datagrams in flight at once, their fragments sent round-robin.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16_384))]
    interleave: u32,
    /// Datagrams reassembled in the timed loop (rounded up to a multiple of --interleave).
    #[arg(long, value_name = "N", default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
    count: u64,
    /// Overlap policy.
    #[arg(long, default_value = "linux", value_parser = parse_policy_arg)]
    policy: Policy,
    /// Push with `push_owned` (fragments kept, datagrams as chains) instead of copying.
    #[arg(long)]
    owned: bool,
}

#[derive(Args, Debug)]
struct BenchFragArgs {
    /// Size of the IP datagram in bytes (header included).
    #[arg(long, value_name = "B", default_value_t = 4000, value_parser = clap::value_parser!(u32).range(28..=65_535))]
    datagram_size: u32,
    /// MTU to fragment for.
    #[arg(long, value_name = "B", default_value_t = 1500, value_parser = clap::value_parser!(u32).range(68..=65_535))]
    mtu: u32,
    /// Datagrams fragmented in the timed loop.
    #[arg(long, value_name = "N", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    count: u64,
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
    /// Drive the qdisc in bursts of N (`enqueue_burst` of N packets, then
    /// `dequeue_burst` of N), as DPDK data planes do; 1 = single calls.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    burst: u32,
}

fn parse_rate_arg(s: &str) -> Result<u64, String> {
    match htb::rate::parse_rate(s) {
        Ok(0) => Err("the rate must be greater than zero".into()),
        Ok(r) => Ok(r),
        Err(e) => Err(format!("{e} (a tc rate such as 100mbit)")),
    }
}

fn parse_policy_arg(s: &str) -> Result<Policy, String> {
    s.parse::<Policy>().map_err(|e| e.to_string())
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
        Command::Bench(BenchCommand::Reasm(a)) => bench::reasm(&a),
        Command::Bench(BenchCommand::Frag(a)) => bench::frag(&a),
        Command::Reasm(a) => reasm::run(&a),
        Command::Frag(a) => frag::run(&a),
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
