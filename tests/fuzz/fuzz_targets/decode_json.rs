//! Arbitrary bytes as a JSON text frame through the client and server decoders, with the
//! round-trip properties of [`rallypoint_fuzz::check_decoders`]. Invalid UTF-8 is in
//! scope: the JSON decoder sees raw frame bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rallypoint_protocol::Encoding;

fuzz_target!(|data: &[u8]| {
    rallypoint_fuzz::check_decoders(Encoding::Json, data);
});
