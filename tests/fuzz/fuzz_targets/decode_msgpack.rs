//! Arbitrary bytes as a MessagePack frame through every decoder of the protocol crate
//! (client and server decode, the snapshot peeks, the structural walker), with the
//! round-trip properties of [`rallypoint_fuzz::check_decoders`].

#![no_main]

use libfuzzer_sys::fuzz_target;
use rallypoint_protocol::Encoding;

fuzz_target!(|data: &[u8]| {
    rallypoint_fuzz::check_decoders(Encoding::MsgPack, data);
});
