//! `tc -s [-d] qdisc/class show` text, and `htb show`.
//!
//! The text itself comes from the library (`ClassInfo::tc_text`,
//! `htb::stats::qdisc_tc_text`); the golden test below pins it to the output
//! of iproute2 6.1 on Linux 6.18.

use htb::sim::SimPacket;
use htb::{ClassInfo, Htb, QdiscStats, RateEstimate};

use crate::ScriptArgs;
use crate::input::{CliError, load_script, print_warnings};

/// `htb show`.
pub fn show(args: &ScriptArgs) -> Result<String, CliError> {
    let loaded = load_script(args)?;
    print_warnings(&loaded.warnings);
    Ok(show_text(&loaded.htb))
}

/// The qdisc block (`tc -s -d qdisc show`), a blank line, then every class
/// (`tc -s -d class show`) in tree order.
pub fn show_text(q: &Htb<SimPacket>) -> String {
    let mut out = qdisc_block(q, &q.stats());
    out.push('\n');
    for info in q.classes() {
        out.push_str(&class_block(&info, true, None));
    }
    out
}

/// `tc -s -d qdisc show` for the htb qdisc.
pub fn qdisc_block(q: &Htb<SimPacket>, s: &QdiscStats) -> String {
    htb::stats::qdisc_tc_text(q.config(), s)
}

/// One class as `tc -s class show` (or with `detailed`, `tc -s -d class
/// show`) prints it, followed by the blank line tc leaves. `est` replaces
/// the rate estimator: (bits/s, packets/s), printed as tc prints an
/// estimator's `rate 10Mbit 1199pps`.
pub fn class_block(c: &ClassInfo, detailed: bool, est: Option<(f64, f64)>) -> String {
    let est = est.map(|(bps, pps)| RateEstimate {
        bps: bps.round() as u64,
        pps: pps.round() as u64,
    });
    let mut text = c.tc_text(detailed, est);
    text.push('\n');
    text
}

#[cfg(test)]
mod test {
    use super::*;
    use htb::tc::LoadOptions;

    /// Output of iproute2 6.1 on Linux 6.18 for the same lines (ifb device,
    /// whose direct_qlen is 32; the library's default is a veth's 1000).
    #[test]
    fn matches_tc_6_1() {
        let s = "tc qdisc add dev x root handle 1: htb default 20 direct_qlen 32\n\
                 tc class add dev x parent 1: classid 1:1 htb rate 30mbit\n\
                 tc class add dev x parent 1:1 classid 1:10 htb rate 5mbit ceil 30mbit\n\
                 tc class add dev x parent 1:1 classid 1:a htb rate 5mbit ceil 30mbit burst 15k\n";
        let l = htb::tc::load::<SimPacket>(s, "t", &LoadOptions::default()).unwrap();
        let text = show_text(&l.htb);
        let want = "\
qdisc htb 1: root refcnt 2 r2q 10 default 0x20 direct_packets_stat 0 ver 3.17 direct_qlen 32
 Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0) 
 backlog 0b 0p requeues 0

class htb 1:1 root rate 30Mbit ceil 30Mbit linklayer ethernet burst 1593b/1 mpu 0b cburst 1593b/1 mpu 0b level 7 
 Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0) 
 backlog 0b 0p requeues 0
 lended: 0 borrowed: 0 giants: 0
 tokens: 6656 ctokens: 6656

class htb 1:a parent 1:1 prio 0 quantum 62500 rate 5Mbit ceil 30Mbit linklayer ethernet burst 15Kb/1 mpu 0b cburst 1593b/1 mpu 0b level 0 
 Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0) 
 backlog 0b 0p requeues 0
 lended: 0 borrowed: 0 giants: 0
 tokens: 384000 ctokens: 6656

class htb 1:10 parent 1:1 prio 0 quantum 62500 rate 5Mbit ceil 30Mbit linklayer ethernet burst 1600b/1 mpu 0b cburst 1593b/1 mpu 0b level 0 
 Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0) 
 backlog 0b 0p requeues 0
 lended: 0 borrowed: 0 giants: 0
 tokens: 40000 ctokens: 6656

";
        assert_eq!(text, want);
    }

    #[test]
    fn short_form_with_estimate_and_overhead() {
        let s = "tc qdisc add dev x root handle 1: htb\n\
                 tc class add dev x parent 1: classid 1:1 htb rate 30mbit overhead 4 mpu 64\n";
        let l = htb::tc::load::<SimPacket>(s, "t", &LoadOptions::default()).unwrap();
        let info = l.htb.classes().remove(0);
        let text = class_block(&info, false, Some((10_000_400.0, 1199.4)));
        assert!(
            text.starts_with(
                "class htb 1:1 root prio 0 rate 30Mbit overhead 4 ceil 30Mbit burst 1593b cburst 1593b \n"
            ),
            "{text}"
        );
        assert!(text.contains("\n rate 10Mbit 1199pps backlog 0b 0p requeues 0\n"));
        let d = class_block(&info, true, None);
        assert!(d.contains("burst 1593b/1 mpu 64b cburst 1593b/1 mpu 64b level 0 \n"));
    }
}
