//! The v2 snapshot decoder on arbitrary frame sequences: one client state (the arena's
//! schema at 20 Hz) applies every frame in turn, as a bot or a browser would apply what a
//! hostile or broken server sends.
//!
//! Input layout: frames one after another, each a little-endian `u16` length and that
//! many bytes (a short last frame is applied as it is).
//!
//! Properties: nothing panics; a frame that applies leaves the client holding its tick,
//! with a hash check only when the frame carried a hash, and rows for exactly the entities
//! held; a frame that fails leaves no state behind, so the next delta is refused until a
//! keyframe; the generic server decoder and the peeks survive the same bytes.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rallypoint_protocol::Encoding;
use rallypoint_protocol::codec::{decode_server, peek_type};
use rallypoint_protocol::entity::arena_schema;
use rallypoint_protocol::rows::{RowSchema, Rows};
use rallypoint_protocol::v2::{ClientState, V2Error};

fn schema() -> &'static RowSchema {
    static SCHEMA: OnceLock<RowSchema> = OnceLock::new();
    SCHEMA.get_or_init(arena_schema)
}

fuzz_target!(|data: &[u8]| {
    let mut client = ClientState::new(schema(), 20).expect("the arena schema is valid");
    let mut rows = Rows::new();
    let mut rest = data;
    while !rest.is_empty() {
        let len = match rest {
            [a, b, ..] => usize::from(u16::from_le_bytes([*a, *b])),
            _ => rest.len(),
        };
        rest = rest.get(2..).unwrap_or_default();
        let (frame, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        let _ = (peek_type(frame), decode_server(Encoding::MsgPack, frame));
        let had_state = client.tick().is_some();
        match client.apply(frame) {
            Ok(applied) => {
                assert_eq!(client.tick(), Some(applied.tick));
                if applied.baseline.is_some() {
                    assert!(had_state, "a delta applied to no state");
                }
                client.rows_at(applied.tick.wrapping_add(7), &mut rows);
                assert_eq!(rows.len(), client.len());
                let _ = client.hash();
            }
            Err(e) => {
                assert_eq!(client.tick(), None, "{e}: the state is dropped");
                assert!(client.is_empty());
                if e == V2Error::AwaitingKeyframe {
                    assert!(!had_state);
                }
                let _ = (e.to_string(), e.needs_resync());
            }
        }
    }
});
