//! Subprotocol names and negotiation.
//!
//! A client lists what it speaks in `Sec-WebSocket-Protocol`, most preferred first. The
//! server picks the first entry it supports and echoes only that one. A browser cannot
//! set an `Authorization` header on a WebSocket, so it may also list `bearer.<jwt>`; that
//! entry carries the token, is never selected and must never be echoed.
//!
//! Pure functions over header values: no HTTP types, no IO.

use std::fmt;

/// Prefix of the subprotocol entry that carries a JWT (`bearer.<jwt>`).
pub const BEARER_PREFIX: &str = "bearer.";

/// A subprotocol this crate can speak. New versions are added beside old ones so that
/// old clients keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subprotocol {
    /// `rallypoint.v1.msgpack`: binary frames, one MessagePack message per frame.
    V1MsgPack,
    /// `rallypoint.v1.json`: text frames, the same messages as JSON.
    V1Json,
    /// `rallypoint.v2.msgpack`: v1's MessagePack messages, except snapshots, which are
    /// quantized, delta-encoded and interest-managed (see [`crate::v2`]).
    V2MsgPack,
}

impl Subprotocol {
    /// Every supported subprotocol, in the server's order of preference for docs and errors.
    pub const ALL: [Subprotocol; 3] = [
        Subprotocol::V1MsgPack,
        Subprotocol::V1Json,
        Subprotocol::V2MsgPack,
    ];

    /// The exact token used in `Sec-WebSocket-Protocol`.
    pub const fn name(self) -> &'static str {
        match self {
            Subprotocol::V1MsgPack => "rallypoint.v1.msgpack",
            Subprotocol::V1Json => "rallypoint.v1.json",
            Subprotocol::V2MsgPack => crate::v2::SUBPROTOCOL,
        }
    }

    /// Looks a name up exactly (subprotocol tokens are case-sensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The message encoding this subprotocol uses.
    pub const fn encoding(self) -> crate::Encoding {
        match self {
            Subprotocol::V1MsgPack => crate::Encoding::MsgPack,
            Subprotocol::V1Json => crate::Encoding::Json,
            Subprotocol::V2MsgPack => crate::Encoding::MsgPack,
        }
    }

    /// Whether snapshots are v2's (the rest of the messages are the same).
    pub const fn is_v2(self) -> bool {
        matches!(self, Subprotocol::V2MsgPack)
    }

    /// The names of every supported subprotocol, for the `unsupported_subprotocol` error.
    pub fn supported_names() -> Vec<&'static str> {
        Self::ALL.iter().map(|p| p.name()).collect()
    }
}

impl fmt::Display for Subprotocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a client's `Sec-WebSocket-Protocol` offer resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiation<'a> {
    /// The first supported entry in client order, if any.
    pub chosen: Option<Subprotocol>,
    /// The token from the first `bearer.<jwt>` entry, if any. Never echoed.
    pub bearer: Option<&'a str>,
    /// How many entries were offered in total (bearer entry included).
    pub offered: usize,
}

/// Splits the values of every `Sec-WebSocket-Protocol` header (the header may repeat and
/// each value is a comma-separated list) into trimmed, non-empty entries, in order.
pub fn offered_entries<'a, I>(header_values: I) -> impl Iterator<Item = &'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    header_values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
}

/// Resolves an offer: the first supported entry in client order wins; the first
/// `bearer.` entry is kept aside as the token.
pub fn negotiate<'a, I>(header_values: I) -> Negotiation<'a>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut out = Negotiation {
        chosen: None,
        bearer: None,
        offered: 0,
    };
    for entry in offered_entries(header_values) {
        out.offered += 1;
        if let Some(token) = entry.strip_prefix(BEARER_PREFIX) {
            if out.bearer.is_none() && !token.is_empty() {
                out.bearer = Some(token);
            }
            continue;
        }
        if out.chosen.is_none() {
            out.chosen = Subprotocol::from_name(entry);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_order_wins() {
        let n = negotiate(["rallypoint.v1.json, rallypoint.v1.msgpack"]);
        assert_eq!(n.chosen, Some(Subprotocol::V1Json));
        let n = negotiate(["rallypoint.v1.msgpack", "rallypoint.v1.json"]);
        assert_eq!(n.chosen, Some(Subprotocol::V1MsgPack));
    }

    #[test]
    fn unknown_entries_are_skipped() {
        let n = negotiate(["rallypoint.v9.cbor, chat, rallypoint.v1.json"]);
        assert_eq!(n.chosen, Some(Subprotocol::V1Json));
        assert_eq!(n.offered, 3);
    }

    #[test]
    fn names_are_case_sensitive() {
        assert_eq!(negotiate(["Rallypoint.V1.Json"]).chosen, None);
    }

    #[test]
    fn bearer_entry_is_a_token_not_a_choice() {
        let n = negotiate(["bearer.aaa.bbb.ccc, rallypoint.v1.msgpack"]);
        assert_eq!(n.chosen, Some(Subprotocol::V1MsgPack));
        assert_eq!(n.bearer, Some("aaa.bbb.ccc"));
        let n = negotiate(["bearer.x.y.z"]);
        assert_eq!(n.chosen, None);
        assert_eq!(n.bearer, Some("x.y.z"));
    }

    #[test]
    fn empty_offer() {
        let n = negotiate(std::iter::empty());
        assert_eq!(
            n,
            Negotiation {
                chosen: None,
                bearer: None,
                offered: 0
            }
        );
        assert_eq!(negotiate([" , ,"]).offered, 0);
    }
}
