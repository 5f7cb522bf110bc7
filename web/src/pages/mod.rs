//! One module per page: a pure `render` from the page's rows to HTML (unit-tested without
//! services) and a thin `handler` that checks the request's parameters, runs the page's
//! queries (`crate::sql`) and wraps the result in the layout.

pub mod alerts;
pub mod block;
pub mod events;
pub mod fleet;
pub mod live;
pub mod logs;
pub mod mempools;
pub mod peers;
pub mod search;
pub mod tips;
pub mod tx;
pub mod validation;

#[cfg(test)]
mod tests {
    //! Every page rendered from rows whose every text field is markup: none of it may reach the
    //! page as markup.

    use crate::forktree::{ForkTree, Observations};
    use crate::params::Params;
    use crate::sql;

    const EVIL: &str = "<i>\"'&";

    fn clean(page: &str, what: &str) {
        assert!(!page.contains("<i>"), "{what} let markup through:\n{page}");
        assert!(
            page.contains("&lt;i&gt;"),
            "{what} dropped the value:\n{page}"
        );
    }

    fn s() -> String {
        EVIL.to_string()
    }

    #[test]
    fn no_page_lets_markup_from_the_data_through() {
        let status = sql::fleet::NodeRow {
            node: s(),
            subversion: s(),
            version: 1,
            height: 5,
            headers: 5,
            best_block_hash: s(),
            tip_time: Some(1),
            initial_block_download: 1,
            verification_progress: 0.5,
            peers_in: 1,
            peers_out: 1,
            mempool_count: 1,
            mempool_bytes: 1,
            last_heard_us: 1,
        };
        clean(
            &super::fleet::render(&super::fleet::Fleet {
                nodes: vec![status.clone()],
                open: vec![sql::fleet::OpenAlerts { node: s(), open: 1 }],
                now_us: 2,
            }),
            "fleet",
        );

        let connected = vec![sql::tips::ConnectedRow {
            hash: s(),
            height: 5,
            prev: s(),
            node: s(),
            at_us: 1,
            miner_tag: Some(s()),
        }];
        let invalid = vec![sql::tips::InvalidRow {
            hash: format!("{EVIL}x"),
            height: 5,
            node: s(),
            reason: s(),
            detail: Some(s()),
            peer: None,
            at_us: 1,
        }];
        let reorgs = vec![sql::tips::ReorgRow {
            node: s(),
            observed_at_us: 1,
            old_tip: s(),
            old_height: 5,
            new_tip: s(),
            new_height: 5,
            fork_point: s(),
            fork_height: 4,
            depth: 1,
            disconnected: vec![s()],
            connected: vec![s()],
        }];
        let tree = ForkTree::build(&Observations {
            low: 4,
            connected: &connected,
            disconnected: &[],
            reorgs: &reorgs,
            tips: &[],
            invalid: &invalid,
            statuses: &[status],
        });
        clean(&super::tips::render(&tree, 2), "tips");

        let block = super::block::BlockData {
            hash: s(),
            others_at_height: vec![sql::block::AtHeight {
                hash: s(),
                nodes: 1,
                miner_tag: Some(s()),
                first_us: 1,
            }],
            seen: vec![sql::block::SeenRow {
                node: s(),
                stage: s(),
                observed_at_us: 1,
                peer: Some(1),
                height: Some(5),
                source: s(),
            }],
            connected: vec![sql::block::ConnectedRow {
                node: s(),
                observed_at_us: 2,
                height: 5,
                prev: s(),
                header_time: 1,
                size: 1,
                weight: 1,
                tx_count: 1,
                coinbase_value_sat: 1,
                subsidy_sat: 1,
                fees_sat: None,
                miner_tag: Some(s()),
                source: s(),
            }],
            children: vec![],
            disconnected: vec![sql::block::DisconnectedRow {
                node: s(),
                at_us: 3,
            }],
            invalid: vec![sql::block::InvalidRow {
                node: s(),
                observed_at_us: 4,
                height: None,
                reason: s(),
                detail: Some(s()),
                peer: None,
                source: s(),
            }],
            timing: vec![sql::block::TimingRow {
                node: s(),
                observed_at_us: 5,
                stage_name: vec![s()],
                stage_ms: vec![1.0],
                connect_total_ms: Some(1.0),
                header_to_tip_ms: None,
                compact_prefilled: None,
                compact_from_mempool: None,
                compact_from_extra_pool: None,
                compact_requested: None,
            }],
            versions: vec![sql::block::VersionRow {
                block_node: s(),
                version: s(),
            }],
            propagation: Some(sql::block::PropagationRow {
                first_seen_us: 1,
                first_node: s(),
                median_seen_us: 1,
                spread_us: 1,
                nodes: 1,
                missing: vec![s()],
            }),
        };
        clean(&super::block::render(&block), "block");

        let replaced = sql::tx::ReplacedRow {
            node: s(),
            observed_at_us: 3,
            replaced_txid: s(),
            new_txid: s(),
            replaced_fee_sat: None,
            new_fee_sat: None,
            replaced_vsize: None,
            new_vsize: None,
        };
        let tx = super::tx::TxData {
            txid: s(),
            seen: vec![sql::tx::SeenRow {
                node: s(),
                observed_at_us: 1,
                wtxid: Some(s()),
                mempool_sequence: None,
                vsize: Some(1),
                fee_sat: Some(1),
                source: s(),
            }],
            rejected: vec![sql::tx::RejectedRow {
                node: s(),
                observed_at_us: 2,
                wtxid: Some(s()),
                peer: None,
                reason: s(),
                reason_text: s(),
            }],
            replaced: vec![replaced.clone()],
            replacing: vec![replaced],
            removed: vec![sql::tx::RemovedRow {
                node: s(),
                observed_at_us: 4,
                mempool_sequence: None,
                reason: "block".into(),
                source: s(),
            }],
            blocks: vec![sql::tx::BlockAt {
                node: s(),
                hash: s(),
                height: 5,
                observed_at_us: 4,
            }],
            propagation: None,
        };
        clean(&super::tx::render(&tx), "tx");

        let alert = sql::alerts::AlertRow {
            alert_kind: s(),
            fingerprint: s(),
            state: s(),
            severity: s(),
            detector: s(),
            alert_node: Some(s()),
            subject: Some(s()),
            summary: s(),
            evidence_name: vec![s()],
            evidence_value: vec![s()],
            starts_at_us: 1,
            ends_at_us: Some(2),
            last_us: 2,
        };
        let filter = sql::alerts::Filter {
            state: None,
            node: Some(s()),
            kind: Some(s()),
        };
        clean(
            &super::alerts::render(
                Some(std::slice::from_ref(&alert)),
                Some(std::slice::from_ref(&alert)),
                &filter,
                &super::alerts::Links::default(),
            ),
            "alerts",
        );

        let search = super::logs::search_from(&Params::from_pairs(&[("q", EVIL)]), 10).unwrap();
        let line = sql::logs::LogRow {
            node: s(),
            time_us: 1,
            thread: s(),
            category: s(),
            level: s(),
            message: s(),
            file_id: s(),
            offset: 0,
        };
        clean(&super::logs::render(&search, &[line]), "logs");

        let around = super::events::Around {
            node: s(),
            at_us: 1,
            window_secs: 1,
        };
        let rows: Vec<sql::events::EventRow> = ["log", "block_seen", "tx_seen", "alert"]
            .iter()
            .map(|k| sql::events::EventRow {
                kind: k.to_string(),
                at_us: 1,
                reference: s(),
                summary: s(),
            })
            .collect();
        clean(&super::events::render(&around, &rows), "events");

        let snap = sql::mempools::SnapshotRow {
            node: s(),
            observed_at_us: 1,
            count: 1,
            vsize: 1,
            total_fee_sat: None,
            min_fee_sat_per_kvb: 1,
            txid_digest: s(),
            mirror_count: Some(2),
            mirror_digest: Some(s()),
        };
        let div = sql::mempools::DivergenceRow {
            mempool_node: s(),
            observed_at_us: 1,
            fleet_nodes: 1,
            fleet_txs: 1,
            held: 1,
            young: 1,
            missing: 1,
            unexplained: 1,
            only_here: 1,
            reason: vec![s()],
            reason_count: vec![1],
            missing_txid: vec![s()],
            missing_reason: vec![s()],
            missing_detail: vec![s()],
            only_here_txid: vec![s()],
        };
        let tpl = sql::mempools::TemplateRow {
            template_node: s(),
            observed_at_us: 1,
            prev: s(),
            height: 1,
            fleet_templates: 1,
            jaccard: 1.0,
            fees_sat: 1,
            fleet_median_fees_sat: 1,
            weight: 1,
            fleet_median_weight: 1,
            left_out: 1,
            explained_fees_sat: 1,
            left_out_txid: vec![s()],
            left_out_fee_sat: vec![1],
            left_out_reason: vec![s()],
        };
        clean(
            &super::mempools::render(&[snap], &[div], &[tpl]),
            "mempools",
        );

        let versions = vec![sql::validation::VersionRow {
            version: s(),
            blocks: 1,
            nodes: 1,
            median_connect_ms: 1.0,
            p90_connect_ms: 2.0,
            last_block: 1,
        }];
        let stages = vec![sql::validation::StageRow {
            version: s(),
            stage_name: s(),
            blocks: 1,
            median_ms: 1.0,
            p90_ms: 1.0,
        }];
        clean(&super::validation::render(&versions, &stages), "validation");

        let peers = sql::peers::PeerSnapshotRow {
            node: s(),
            observed_at_us: 1,
            peers: 1,
            peer_id: vec![1],
            peer_addr: vec![s()],
            peer_network: vec![s()],
            peer_connection_type: vec![s()],
            peer_inbound: vec![1],
            peer_version: vec![1],
            peer_subversion: vec![s()],
            peer_ping_ms: vec![1.0],
            peer_bytes_sent: vec![1],
            peer_bytes_recv: vec![1],
            peer_conn_time: vec![1],
            joined: vec![],
            left: vec![],
        };
        clean(&super::peers::render(&[peers], &[], 5), "peers");
    }
}
