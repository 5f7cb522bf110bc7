//! Arbitrary bytes never panic the line parser or the extractor, including bytes shaped like
//! the lines the extractor looks for (so its field readers see truncated and corrupt fields).

use debuglog::{parse_line, parse_line_as, split_lines, Extractor, LineReader, ThreadNames};
use proptest::prelude::*;

const HASH: &str = "4b48a6f085ccd4bde4eeb753fc24144ff8fdb45f466d58b6d59c82da9ef0486b";

/// Message starts the extractor dispatches on, with a well-formed tail to cut or corrupt.
fn message_starts() -> Vec<String> {
    vec![
        format!("UpdateTip: new best={HASH} height=121 version=0x20000000 warning='x'"),
        "UpdateTip: 42 of last 100 blocks have unexpected version".into(),
        format!("Saw new header hash={HASH} height=5 peer=0"),
        format!("Saw new cmpctblock header hash={HASH} height=5 peer=0"),
        format!("Initialized PartiallyDownloadedBlock for block {HASH} using a cmpctblock of 1"),
        format!("Successfully reconstructed block {HASH} with 1 txn prefilled, 6 txn from mempool (incl at least 0 from extra pool) and 2 txn (362 bytes) requested"),
        "received: cmpctblock (295 bytes) peer=0".into(),
        format!("received block {HASH} peer=1"),
        format!("replacing mempool tx {HASH} (wtxid={HASH}, fees=1000, vsize=110). New tx {HASH} (wtxid={HASH}, fees=10000, vsize=110)"),
        format!("replacing tx {HASH} (wtxid={HASH}) with {HASH} (wtxid={HASH}) for 0.1 additional fees, 0 delta bytes"),
        format!("{HASH} (wtxid={HASH}) from peer=2 was not accepted: insufficient fee, x (code 66)"),
        format!("BlockChecked: block hash={HASH} state=bad-cb-amount, coinbase pays too much"),
        "Block validation error: bad-cb-amount, coinbase pays too much".into(),
        format!("BlockDisconnected: block hash={HASH} block height=114"),
        format!("InvalidChainFound: invalid block={HASH}  height=121  log2_work=7.9"),
        "InvalidChainFound:  current best=x".into(),
        format!("ConnectTip: ConnectBlock {HASH} failed, bad-cb-amount, detail"),
        format!("ERROR: ConnectTip: ConnectBlock {HASH} failed, bad-cb-amount (code 16)"),
        "ERROR: ConnectBlock(): coinbase pays too much (actual=1 vs limit=0)".into(),
        format!("Timeout downloading block {HASH} from peer=4, disconnecting"),
        "  - Load block from disk: 0.01ms".into(),
        "  - Using cached block".into(),
        "    - Connect total: 1.5ms [0.01s]".into(),
        "- Connect block: 1.26ms [0.06s (0.58ms/blk)]".into(),
        "- Disconnect block: 0.06ms".into(),
        "Bitcoin Core version v30.99.0".into(),
        "CheckForkWarningConditions: Warning: Large valid fork found".into(),
        "Warning: x".into(),
    ]
}

fn shaped_line() -> impl Strategy<Value = Vec<u8>> {
    let starts = message_starts();
    (
        prop::sample::select(vec![
            "2026-11-25T15:52:39.141167Z ",
            "2017-01-17 11:31:45 ",
            "2019-07-10T14:35:27Z [msghand] ",
            "2023-05-16T05:49:52.203009Z [msghand] [net] ",
            "2022-10-22T14:22:49.157136Z [init] [init/common.cpp:149] [F] [net:debug] ",
            "2026-11-25T15:52:39.252448Z [warning] ",
            "2026-12-05T03:50:53.003128Z [shutoff] [logging/timer.h:58] [void BCLog::Timer<TimeType>::Log(const std::string&) [with TimeType = std::chrono::duration<long int, std::ratio<1, 1000> >]] [bench] ",
            "2026-12-05T03:51:49.579742Z (mocktime: 2026-12-05T03:52:49Z) [httpworker.15] [node/miner.cpp:173] [T& operator[](int) [with T = int (*)[3]]] [all:info] ",
            "2026-12-05T03:53:50.411922Z [basic block filter index] [util/thread.cpp:20] [void f(int[)] ",
            "",
        ]),
        prop::sample::select(starts),
        0usize..400,
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..8),
        prop::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(|(prefix, msg, cut, keep_rest, inserted, junk)| {
            // The message cut at `cut`, with bytes inserted there, then either its rest or
            // nothing, then junk.
            let msg = msg.as_bytes();
            let cut = cut.min(msg.len());
            let mut line = prefix.as_bytes().to_vec();
            line.extend_from_slice(&msg[..cut]);
            line.extend_from_slice(&inserted);
            if keep_rest {
                line.extend_from_slice(&msg[cut..]);
            }
            line.extend_from_slice(&junk);
            line
        })
}

/// Tip changes over a few hashes and heights, mixed with bench and disconnect lines: walks
/// the reorg and timing joins through orders real logs never show.
fn chain_line() -> impl Strategy<Value = Vec<u8>> {
    (0u8..4, 0u32..6, 0usize..4).prop_map(|(h, height, what)| {
        let hash = format!("{:064x}", u64::from(h) + 1);
        let msg = match what {
            0 => format!("UpdateTip: new best={hash} height={height} version=0x20000000"),
            1 => format!("[validation] BlockDisconnected: block hash={hash} block height={height}"),
            2 => "[bench]   - Load block from disk: 0.01ms".to_string(),
            _ => "[bench] - Connect block: 1.26ms [0.06s (0.58ms/blk)]".to_string(),
        };
        format!("2026-11-25T15:52:39.141167Z {msg}").into_bytes()
    })
}

/// Feeds the lines through a `LineReader` (as the agent reads a file) into an extractor.
fn run(lines: &[Vec<u8>]) {
    let mut x = Extractor::new();
    let mut reader = LineReader::new();
    let mut out = Vec::new();
    for (off, l) in lines.iter().enumerate() {
        if let Ok(line) = reader.parse(l) {
            let _ = line.to_log_line(off as u64);
            x.feed_into(&line, &mut out);
        }
    }
    out.extend(x.finish());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        let lines: Vec<Vec<u8>> = split_lines(&data, 0).map(|(_, l)| l.to_vec()).collect();
        run(&lines);
    }

    #[test]
    fn a_valid_timestamp_then_arbitrary_bytes_never_panic(
        msgs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20)
    ) {
        let lines: Vec<Vec<u8>> = msgs
            .into_iter()
            .map(|m| [b"2026-11-25T15:52:39.141167Z ".as_slice(), &m].concat())
            .collect();
        run(&lines);
    }

    #[test]
    fn arbitrary_chain_histories_never_panic(lines in prop::collection::vec(chain_line(), 0..80)) {
        run(&lines);
    }

    #[test]
    fn corrupted_event_lines_never_panic(lines in prop::collection::vec(shaped_line(), 0..60)) {
        run(&lines);
    }
}

/// Lines made mostly of brackets, spaces, colons and dots: every prefix rule's edge.
fn bracket_soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(b"[[]] :.1aZ(<".to_vec()), 0..120)
        .prop_map(|soup| [b"2026-12-05T03:50:53.003128Z ".as_slice(), &soup].concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn prefixes_are_cut_from_the_line_and_the_message_is_its_tail(line in bracket_soup()) {
        // In every mode: guessing, and a file known to have thread names or none.
        prop_assert_eq!(parse_line(&line), parse_line_as(&line, ThreadNames::Unknown));
        for mode in [ThreadNames::Unknown, ThreadNames::On, ThreadNames::Off] {
            let Ok(l) = parse_line_as(&line, mode) else {
                continue;
            };
            prop_assert!(line.ends_with(l.message));
            let within = |f: &[u8]| {
                let (start, end) = (line.as_ptr() as usize, line.as_ptr() as usize + line.len());
                let p = f.as_ptr() as usize;
                p >= start && p + f.len() <= end
            };
            for f in [l.thread, l.location, l.function, l.category, l.level].into_iter().flatten() {
                prop_assert!(within(f));
            }
            if mode == ThreadNames::Off {
                prop_assert!(l.thread.is_none());
            }
        }
        run(&[line]);
    }
}
