//! Properties of decoding and subjects over arbitrary input: whatever bytes arrive on a bmon
//! subject, `Envelope::decode` returns an error or an envelope (never a panic), and an
//! envelope's subject names its own kind and node only, so a consumer comparing the two
//! (`subject_mismatch`) catches an envelope published on another node's subject.

use bitcoin::hashes::Hash;
use bitcoin::{Amount, BlockHash, Txid};
use proptest::prelude::*;
use schema::event::{BlockSeen, BlockStage, Source, TxRejected, TxSeen};
use schema::{Envelope, Event, NodeId, UnixMicros};

fn node_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,64}"
}

fn envelope(node: &str, at: i64, which: u8, n: u8) -> Envelope {
    let node = NodeId::new(node).expect("a valid name");
    let at = UnixMicros(at);
    let txid = Txid::from_byte_array([n; 32]);
    let event: Event = match which % 3 {
        0 => TxSeen {
            txid,
            wtxid: None,
            mempool_sequence: Some(u64::from(n)),
            vsize: Some(141),
            fee: Some(Amount::from_sat(u64::from(n) * 100)),
            source: Source::Zmq,
            parents: Vec::new(),
            spends: Vec::new(),
        }
        .into(),
        1 => BlockSeen {
            hash: BlockHash::from_byte_array([n; 32]),
            height: None,
            stage: BlockStage::Cmpctblock,
            peer: Some(u64::from(n)),
            source: Source::Log,
        }
        .into(),
        _ => TxRejected {
            txid,
            wtxid: None,
            peer: Some(3),
            reason: "insufficient fee".into(),
            reason_text: String::new(),
        }
        .into(),
    };
    Envelope::new(node, at, event)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_bytes_decode_to_an_error_or_an_envelope(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let _ = Envelope::decode(&bytes);
    }

    #[test]
    fn a_damaged_envelope_never_panics_and_what_decodes_round_trips(
        node in node_name(),
        at in 0i64..4_000_000_000_000_000,
        which in any::<u8>(),
        n in any::<u8>(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let env = envelope(&node, at, which, n);
        let mut bytes = env.encode().expect("encodes");
        for (at, byte) in flips {
            let i = at % bytes.len();
            bytes[i] = byte;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        if let Ok(decoded) = Envelope::decode(&bytes) {
            let again = Envelope::decode(&decoded.encode().expect("re-encodes")).expect("decodes");
            prop_assert_eq!(again, decoded);
        }
    }

    #[test]
    fn a_subject_names_its_own_node_and_kind_only(
        a in node_name(),
        b in node_name(),
        which in any::<u8>(),
        n in any::<u8>(),
    ) {
        let env = envelope(&a, 1, which, n);
        let subject = env.subject();
        let parts: Vec<&str> = subject.split('.').collect();
        prop_assert_eq!(parts.len(), 4, "{}", subject);
        prop_assert_eq!(parts[2], env.kind().as_str());
        prop_assert_eq!(parts[3], a.as_str());
        // The same event from another node belongs on another subject: published on a's, it
        // is a mismatch the consumers dead-letter.
        let forged = envelope(&b, 1, which, n);
        prop_assert_eq!(forged.subject() == subject, a == b);
        // And the encoding keeps the node: what decodes says who it claims to be.
        let decoded = Envelope::decode(&env.encode().expect("encodes")).expect("decodes");
        prop_assert_eq!(decoded.subject(), subject);
    }
}
