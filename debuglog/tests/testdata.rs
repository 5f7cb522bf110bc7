//! Real debug.log excerpts from Core 0.10 to 25 (bmon-testdata): the events of each file,
//! with their exact values.

mod common;

use bitcoin::BlockHash;
use common::{at, events_of, h};
use debuglog::LogEvent;
use schema::event::{
    BlockDisconnected, BlockDownloadTimeout, BlockSeen, BlockStage, BlockTiming,
    CompactReconstruction, InvalidBlock, Reorg, Source, TxRejected, Warning,
};
use schema::{Event, Height};

fn file(name: &str) -> Vec<LogEvent> {
    events_of(&format!("bmon-testdata/{name}"))
}

fn kinds(evs: &[LogEvent]) -> Vec<&'static str> {
    evs.iter().map(|e| e.event.kind().as_str()).collect()
}

fn seen(hash: &str, height: Option<u32>, stage: BlockStage, peer: Option<u64>) -> Event {
    Event::BlockSeen(BlockSeen {
        hash: h(hash),
        height: height.map(Height),
        stage,
        peer,
        source: Source::Log,
    })
}

fn stages(t: &BlockTiming) -> Vec<(&str, f64)> {
    t.stages.iter().map(|s| (s.name.as_str(), s.ms)).collect()
}

fn timing(e: &LogEvent) -> &BlockTiming {
    match &e.event {
        Event::BlockTiming(t) => t,
        other => panic!("not a timing: {other:?}"),
    }
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-6)
}

const B589733: &str = "00000000000000000010e1543aa317eb5e34148afda9b9da10edbdd9cb8a1c8d";

#[test]
fn block_download_timeouts_with_and_without_thread_or_micros() {
    let evs = file("block-timeouts.log");
    let want = [
        (
            "2022-09-30T17:26:52Z",
            "0000000000000000000573b6110e9e77864ee0832f2ade5f9317b439c3ce5294",
            4,
        ),
        (
            "2022-10-05T22:29:02.937882Z",
            "000000000000000000086779ecf494b0595a9b779f501c7e25fb2be0b69907a2",
            24,
        ),
        (
            "2022-10-06T19:52:47.698534Z",
            "000000000000000000016d82a353995e3e713c53319f71361cd02b53cc0fb49e",
            3,
        ),
        (
            "2022-10-06T20:12:10.246876Z",
            "0000000000000000000571fbffbdcbae46b16f79e75a77cd1a470981f48d951f",
            6,
        ),
        (
            "2022-10-06T20:58:28.107620Z",
            "00000000000000000003fcc1329bec27b69463dde49fb367421d8f139a2e66f5",
            5,
        ),
    ];
    let want: Vec<LogEvent> = want
        .iter()
        .map(|(ts, hash, peer)| LogEvent {
            observed_at: at(ts),
            event: Event::BlockDownloadTimeout(BlockDownloadTimeout {
                hash: Some(h(hash)),
                peer: Some(*peer),
            }),
        })
        .collect();
    assert_eq!(evs, want);
}

#[test]
fn coinbase_overspend_in_0_18_is_one_invalid_block_from_the_compact_block_peer() {
    let evs = file("logs_badblock_cb_overspent_018.txt");
    let hash = "0000000000000000000b47042b90c6a893e6e5cdef70c92beefb88f4c5fa5a69";
    assert_eq!(kinds(&evs), ["block_seen", "invalid_block", "block_timing"]);
    assert_eq!(
        evs[0].event,
        seen(hash, None, BlockStage::Cmpctblock, Some(2579))
    );
    assert_eq!(
        evs[1],
        LogEvent {
            observed_at: at("2019-07-10T14:35:27Z"),
            event: Event::InvalidBlock(InvalidBlock {
                hash: h(hash),
                height: Some(Height(584802)),
                reason: "bad-cb-amount".into(),
                detail: Some(
                    "coinbase pays too much (actual=1326546691 vs limit=1250000000)".into()
                ),
                peer: Some(2579),
                source: Source::Log,
            }),
        }
    );
    // Reconstructed, then found invalid in ConnectBlock: the counts and the stages up to
    // the failure, never a tip.
    let t = timing(&evs[2]);
    assert_eq!(evs[2].observed_at, at("2019-07-10T14:35:27Z"));
    assert_eq!(
        (t.hash, t.height, t.header_to_tip_ms, t.connect_total_ms),
        (Some(h(hash)), Some(Height(584802)), None, None)
    );
    assert_eq!(
        t.compact,
        Some(CompactReconstruction {
            prefilled: 1,
            from_mempool: 0,
            from_extra_pool: 0,
            requested: 0
        })
    );
    assert_eq!(
        stages(t),
        [
            ("Load block from disk", 0.00),
            ("Sanity checks", 0.01),
            ("Fork checks", 0.04),
            ("Connect 1 transactions", 0.04)
        ]
    );
}

#[test]
fn connect_block_in_0_10_times_every_bench_stage() {
    let evs = file("logs_connectblock_010.txt");
    assert_eq!(kinds(&evs), ["block_seen", "block_seen", "block_timing"]);
    assert_eq!(
        evs[0].event,
        seen(B589733, None, BlockStage::Block, Some(1))
    );
    assert_eq!(
        evs[1].event,
        seen(B589733, Some(589733), BlockStage::Tip, None)
    );
    let t = timing(&evs[2]);
    assert_eq!(evs[2].observed_at, at("2019-08-12 04:01:50"));
    assert_eq!(t.hash, Some(h(B589733)));
    assert_eq!(t.height, Some(Height(589733)));
    assert_eq!(
        stages(t),
        [
            ("Load block from disk", 0.00),
            ("Connect 1996 transactions", 1039.51),
            ("Verify 4055 txins", 1052.74),
            ("Index writing", 4.71),
            ("Callbacks", 0.03),
            ("Connect total", 1235.09),
            ("Flush", 10.92),
            ("Writing chainstate", 0.43),
            ("Connect postprocess", 10.45),
            ("Connect block", 1256.89),
        ]
    );
    assert_eq!(t.connect_total_ms, Some(1235.09));
    // `received block` at 04:01:49, UpdateTip at 04:01:50 (seconds only in 0.10).
    assert_eq!(t.header_to_tip_ms, Some(1000.0));
    assert_eq!(t.compact, None);
}

#[test]
fn connect_block_basic_gives_two_timings_and_drops_the_incomplete_third() {
    let evs = file("logs_connectblock_basic.txt");
    assert_eq!(
        kinds(&evs),
        ["warning", "block_seen", "block_timing", "block_timing"]
    );
    assert_eq!(
        evs[0].event,
        Event::Warning(Warning {
            message: "44 of last 100 blocks have unexpected version".into()
        })
    );
    let hash = "00000000000000000001d80d14ee4400b6d9c851debe27e6777f3876edd4ad1e";
    for e in &evs[2..] {
        let t = timing(e);
        assert_eq!(e.observed_at, at("2019-07-29T18:34:40Z"));
        assert_eq!((t.hash, t.height), (Some(h(hash)), Some(Height(589349))));
        assert_eq!(t.stages.len(), 12);
        assert_eq!(t.stages[11].name, "Connect block");
        assert_eq!(t.stages[11].ms, 136.63);
        assert_eq!(t.connect_total_ms, Some(55.33));
    }
}

#[test]
fn full_block_in_0_12_with_five_rejections_and_the_version_warning() {
    let evs = file("logs_gotblock_012.txt");
    assert_eq!(
        kinds(&evs),
        [
            "tx_rejected",
            "tx_rejected",
            "tx_rejected",
            "tx_rejected",
            "tx_rejected",
            "block_seen",
            "block_seen",
            "warning",
            "block_timing"
        ]
    );
    let rej = |e: &LogEvent| match &e.event {
        Event::TxRejected(r) => r.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        rej(&evs[0]),
        TxRejected {
            txid: h("1e3eb84d15add66b33515ec6ac39f88dddf1ada7686cc314652b36500d574ef7"),
            wtxid: None,
            peer: Some(43),
            reason: "non-mandatory-script-verify-flag (unknown error)".into(),
            reason_text: "non-mandatory-script-verify-flag (unknown error)".into(),
        }
    );
    assert_eq!(evs[0].observed_at, at("2019-08-12 04:01:47.821854"));
    let reasons: Vec<(String, Option<u64>)> = evs[..5]
        .iter()
        .map(|e| {
            let r = rej(e);
            (r.reason, r.peer)
        })
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "non-mandatory-script-verify-flag (unknown error)".into(),
                Some(43)
            ),
            ("scriptpubkey".into(), Some(43)),
            ("bad-txns-nonstandard-inputs".into(), Some(43)),
            ("non-final".into(), Some(43)),
            ("non-final".into(), Some(46)),
        ]
    );
    assert_eq!(rej(&evs[1]).reason_text, "scriptpubkey (code 64)");
    assert_eq!(
        evs[5].event,
        seen(B589733, None, BlockStage::Block, Some(54))
    );
    assert_eq!(
        evs[7].event,
        Event::Warning(Warning {
            message: "42 of last 100 blocks have unexpected version".into()
        })
    );
    let t = timing(&evs[8]);
    assert_eq!(t.connect_total_ms, Some(1359.22));
    assert_eq!(t.stages.last().map(|s| s.ms), Some(1388.89));
    // received block 04:01:48.896022 -> UpdateTip 04:01:50.291621.
    assert!(close(t.header_to_tip_ms, 1395.599), "{t:?}");
}

#[test]
fn compact_block_in_0_13_reconstructs_from_mempool() {
    let evs = file("logs_gotblock_013.txt");
    assert_eq!(
        kinds(&evs),
        ["block_seen", "warning", "block_seen", "block_timing"]
    );
    assert_eq!(
        evs[0],
        LogEvent {
            observed_at: at("2019-08-12 04:01:45.278101"),
            event: seen(B589733, None, BlockStage::Cmpctblock, Some(218)),
        }
    );
    let t = timing(&evs[3]);
    assert_eq!(
        t.compact,
        Some(CompactReconstruction {
            prefilled: 1,
            from_mempool: 1995,
            from_extra_pool: 0,
            requested: 0
        })
    );
    assert!(close(t.header_to_tip_ms, 231.923), "{t:?}");
    assert_eq!(t.connect_total_ms, Some(124.85));
    assert_eq!(t.stages.last().map(|s| s.ms), Some(179.49));
}

#[test]
fn compact_block_in_0_18_with_extra_pool_wording() {
    let evs = file("logs_gotblock_018.txt");
    assert_eq!(
        kinds(&evs),
        ["block_seen", "warning", "block_seen", "block_timing"]
    );
    assert_eq!(
        evs[0].event,
        seen(B589733, None, BlockStage::Cmpctblock, Some(4349))
    );
    let t = timing(&evs[3]);
    assert_eq!(
        t.compact,
        Some(CompactReconstruction {
            prefilled: 1,
            from_mempool: 1995,
            from_extra_pool: 0,
            requested: 0
        })
    );
    assert_eq!(t.header_to_tip_ms, Some(0.0));
    assert_eq!(t.connect_total_ms, Some(46.46));
    assert_eq!(
        stages(t)[3..6],
        [
            ("Connect 1996 transactions", 34.40),
            ("Verify 4055 txins", 34.62),
            ("Index writing", 10.83)
        ]
    );
}

#[test]
fn reorg_of_depth_2_in_24_99_with_source_locations() {
    let evs = file("logs_reorg_23.txt");
    let reorgs: Vec<&Reorg> = evs
        .iter()
        .filter_map(|e| match &e.event {
            Event::Reorg(r) => Some(r),
            _ => None,
        })
        .collect();
    let hb = h::<BlockHash>;
    assert_eq!(
        reorgs,
        [&Reorg {
            old_tip: hb("3cfd126d960a9b87823fd94d48121f774aac448c9a6f1b48efc547c61f9b8c1f"),
            old_height: Height(2),
            new_tip: hb("7c06da428d44f32c0a77f585a44181d3f71fcbc55b44133d60d6941fa9165b0d"),
            new_height: Height(3),
            fork_point: hb("0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"),
            fork_height: Height(0),
            depth: 2,
            disconnected: vec![
                hb("3cfd126d960a9b87823fd94d48121f774aac448c9a6f1b48efc547c61f9b8c1f"),
                hb("04fb55cec0a7e506d64b16ed26eefc2ccf66a927d6f1a3bb113df1630d59859f"),
            ],
            connected: vec![
                hb("1397a170ca910a5689af809abf4cb25070c36e7bc023e2a23064652543b7f5eb"),
                hb("54d205ef4c87ce25fddb28b0c792f44b308613e75d88b61d71906aed70c64b48"),
                hb("7c06da428d44f32c0a77f585a44181d3f71fcbc55b44133d60d6941fa9165b0d"),
            ],
            source: Source::Log,
        }]
    );
    let disc: Vec<&BlockDisconnected> = evs
        .iter()
        .filter_map(|e| match &e.event {
            Event::BlockDisconnected(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(disc.len(), 2, "echo lines must not add disconnects");
    assert_eq!((disc[0].height, disc[1].height), (Height(2), Height(1)));
    let timed = evs
        .iter()
        .filter(|e| matches!(e.event, Event::BlockTiming(_)))
        .count();
    assert_eq!(timed, 6, "genesis, 2 blocks, then the 3 of the new branch");
    let tips: Vec<u32> = evs
        .iter()
        .filter_map(|e| match &e.event {
            Event::BlockSeen(BlockSeen {
                stage: BlockStage::Tip,
                height,
                ..
            }) => height.map(|hgt| hgt.0),
            _ => None,
        })
        .collect();
    assert_eq!(tips, [0, 1, 2, 1, 2, 3]);
}

#[test]
fn mempool_accepts_carry_no_event() {
    assert!(file("mempool-accepts-log.txt").is_empty());
}

#[test]
fn new_header_in_v25_is_seen_as_header_twice_then_compact_block_then_tip() {
    let evs = file("new-header.log");
    let hash = "00000000000000000004b2aea48da395156297a536ca62c2c53d25e14225f72a";
    let got: Vec<(schema::UnixMicros, &Event)> =
        evs.iter().map(|e| (e.observed_at, &e.event)).collect();
    assert_eq!(
        got[..4],
        [
            (
                at("2023-05-16T05:49:52.202998Z"),
                &seen(hash, Some(789959), BlockStage::Header, None)
            ),
            (
                at("2023-05-16T05:49:52.203009Z"),
                &seen(hash, None, BlockStage::Header, Some(46))
            ),
            (
                at("2023-05-16T05:49:52.210637Z"),
                &seen(hash, None, BlockStage::Cmpctblock, Some(46))
            ),
            (
                at("2023-05-16T05:49:52.269840Z"),
                &seen(hash, Some(789959), BlockStage::Tip, None)
            ),
        ]
    );
    // The excerpt ends before `- Connect block`: `finish` still reports the timing.
    assert_eq!(evs.len(), 5);
    assert_eq!(evs[4].observed_at, at("2023-05-16T05:49:52.269840Z"));
    let t = timing(&evs[4]);
    assert_eq!(
        t.compact,
        Some(CompactReconstruction {
            prefilled: 1,
            from_mempool: 4529,
            from_extra_pool: 4,
            requested: 0
        })
    );
    assert!(close(t.header_to_tip_ms, 66.842), "{t:?}");
    assert_eq!(t.connect_total_ms, Some(15.11));
    assert_eq!(t.stages.len(), 10);
    assert_eq!(t.stages[5].name, "Write undo data");
}
