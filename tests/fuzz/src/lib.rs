//! What the fuzz targets share: the decoder properties checked in both encodings, the
//! fixed keys of the handshake target, the shipped assets for the room target, and a
//! poll-once executor for async code that can never block.
//!
//! Everything here panics on a broken property: a panic is how libFuzzer learns that an
//! input is interesting. Nothing here may do IO beyond reading the repository's assets
//! once.

use std::future::Future;
use std::path::Path;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use rallypoint::arena::assets::ArenaAssets;
use rallypoint::assets::Assets;
use rallypoint::auth::Verifier;
use rallypoint::config::AuthConfig;
use rallypoint_protocol::codec::{
    decode_client, decode_server, encode_client, encode_ents, encode_server, msgpack_value_len,
    peek_snap_header, peek_type, snap_frame,
};
use rallypoint_protocol::inbound::{Inbound, decode_checked_fields, decode_inbound};
use rallypoint_protocol::message::{ClientMessage, Input, ServerMessage};
use rallypoint_protocol::{DecodeError, DecodeLimits, Encoding};
use serde::de::IgnoredAny;

/// The HS256 secret the handshake target's verifier trusts (and `examples/seeds.rs` signs
/// with).
pub const HS256_SECRET: &[u8] = b"rallypoint-fuzz-hs256-secret-0123456789";
/// The `kid` of the EC public key.
pub const EC_KID: &str = "fuzz-ec-1";
/// A P-256 public key, PEM. Its private half is `keys/ec-p256-private.pem`, used only to
/// sign seeds; neither is used anywhere but fuzzing.
pub const EC_PUBLIC_PEM: &[u8] = include_bytes!("../keys/ec-p256-public.pem");

/// A verifier with the fixed HS256 secret and the EC key by `kid`, default audience and
/// leeway.
pub fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let keys = [(EC_KID.to_owned(), EC_PUBLIC_PEM.to_vec(), EC_KID.to_owned())];
        Verifier::new(Some(HS256_SECRET), &keys, &AuthConfig::default())
            .expect("the fuzz keys load")
    })
}

/// The repository's `assets/`, loaded once.
pub fn assets() -> &'static Assets<ArenaAssets> {
    static ASSETS: OnceLock<Assets<ArenaAssets>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets");
        rallypoint::assets::load_dir(Path::new(dir)).expect("the shipped assets load")
    })
}

/// Polls a future once and returns its output. For async code over in-memory readers,
/// which are always ready; a `Pending` means the harness is wrong.
pub fn ready<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("an in-memory future was not ready"),
    }
}

/// Every decoder of the protocol crate on `data` as the given encoding, with the
/// properties that must hold:
///
/// - nothing panics, and every client decode error maps to a close reason;
/// - a decoded client message re-encodes and decodes to the same value (validation
///   guarantees finite floats, so equality is meaningful);
/// - a decoded server message re-encodes to bytes that decode and re-encode to themselves
///   (compared as bytes, because server messages may carry NaN);
/// - a snapshot assembled from a shared `ents` body equals a full encoding;
/// - the MessagePack peeks agree with the full decoder and with what the encoder writes;
/// - `msgpack_value_len` never claims more than the input, and its prefix is a value.
pub fn check_decoders(encoding: Encoding, data: &[u8]) {
    let limits = DecodeLimits::default();
    check_session_path(encoding, data, &limits);
    match decode_client(encoding, data, &limits) {
        Ok(msg) => {
            let bytes = encode_client(encoding, &msg);
            let again = decode_client(encoding, &bytes, &limits)
                .unwrap_or_else(|e| panic!("{msg:?} re-encoded to {bytes:?}: {e}"));
            assert_eq!(again, msg, "client round trip");
            if encoding == Encoding::MsgPack {
                assert_eq!(
                    msgpack_value_len(data, limits.max_depth),
                    Ok(data.len()),
                    "an accepted MessagePack message is exactly one value"
                );
            }
        }
        Err(e) => {
            // Mapping to a close code and describing the error must not panic either.
            let _ = (e.close_reason().code(), e.to_string());
            if data.len() > limits.max_message_bytes {
                assert!(matches!(e, DecodeError::TooLarge { .. }), "{e:?}");
            }
        }
    }

    if let Ok(msg) = decode_server(encoding, data) {
        let bytes = encode_server(encoding, &msg);
        // JSON cannot carry non-finite floats (they encode as `null`), so a server message
        // holding one does not survive the trip; that is the encoder's documented limit.
        if let Ok(again) = decode_server(encoding, &bytes) {
            assert_eq!(encode_server(encoding, &again), bytes, "server round trip");
        } else {
            assert_eq!(encoding, Encoding::Json, "MessagePack carries every f32");
        }
        if let ServerMessage::Snap(s) = &msg {
            let assembled = snap_frame(encoding, s.tick, s.ack, &encode_ents(encoding, &s.ents));
            assert_eq!(
                assembled, bytes,
                "shared-body snapshot equals a full encoding"
            );
            if encoding == Encoding::MsgPack {
                let h = peek_snap_header(&bytes).expect("an encoded snap has a readable header");
                assert_eq!((h.tick, h.ack), (s.tick, s.ack));
                if let Some(h) = peek_snap_header(data) {
                    assert_eq!((h.tick, h.ack), (s.tick, s.ack), "peek agrees with decode");
                }
            }
        }
        if encoding == Encoding::MsgPack {
            assert!(peek_type(&bytes).is_some(), "the encoder writes `t` first");
        }
    }

    if encoding == Encoding::MsgPack {
        let _ = (peek_type(data), peek_snap_header(data));
        for depth in [0, 1, 16, 64] {
            if let Ok(n) = msgpack_value_len(data, depth) {
                assert!(
                    n <= data.len(),
                    "value length {n} beyond {} bytes",
                    data.len()
                );
                assert_eq!(
                    msgpack_value_len(&data[..n], depth),
                    Ok(n),
                    "prefix is a value"
                );
            }
        }
    }
}

/// The engine's path for a client message — the session reads the envelope alone
/// ([`decode_inbound`] with the fields skipped), the room decodes the input's fields
/// ([`decode_checked_fields`]) — accepts exactly what [`decode_client`] accepts, with the
/// same type and sequence number.
fn check_session_path(encoding: Encoding, data: &[u8], limits: &DecodeLimits) {
    let whole = decode_client(encoding, data, limits);
    let engine = decode_inbound::<IgnoredAny>(encoding, data, limits).and_then(|m| match m {
        Inbound::Input { seq, .. } => {
            let fields: Input = decode_checked_fields(encoding, data, limits)?;
            Ok(ClientMessage::Input(Input { seq, ..fields }))
        }
        Inbound::Ping(p) => Ok(ClientMessage::Ping(p)),
        Inbound::Chat(c) => Ok(ClientMessage::Chat(c)),
        Inbound::Resync => Ok(ClientMessage::Resync),
    });
    match (&whole, &engine) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the engine's path reads the same message"),
        (Err(_), Err(_)) => {}
        _ => panic!("decode_client {whole:?} but the engine's path {engine:?}"),
    }
}
