//! Close reasons: the one place where a reason to end a session becomes a WebSocket close
//! code, an `error` message code and a human-readable explanation.
//!
//! A session that ends for a reason other than a normal close first receives
//! `{"t":"error","code":..,"message":..}` and then a close frame with the code below.

use std::fmt;

/// Why the server ends a WebSocket session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// 1000: the session is over (the client asked, or nothing is wrong).
    Normal,
    /// 1001: the server is shutting down (graceful drain); reconnect elsewhere or later.
    ShuttingDown,
    /// 1002: the peer broke the WebSocket protocol (masking, reserved bits, opcodes,
    /// control frames over 125 bytes, bad close codes, invalid continuation).
    ProtocolViolation,
    /// 1003: a text frame on the MessagePack subprotocol or a binary frame on JSON.
    WrongFrameType,
    /// 1007: the message could not be decoded or is invalid (bad MessagePack/JSON,
    /// missing keys, unknown type, NaN, invalid UTF-8).
    InvalidMessage,
    /// 1008: sustained rate-limit abuse.
    RateLimited,
    /// 1008: a spectator sent input.
    SpectatorInput,
    /// 1008: the client did not read its messages for too long (slow consumer).
    SlowConsumer,
    /// 1008: nothing heard from the peer (not even a pong) within the heartbeat timeout.
    HeartbeatTimeout,
    /// 1009: a message larger than the limit.
    MessageTooLarge,
    /// 1011: the server hit an internal error.
    Internal,
    /// 1012: the room moved to another node (the node is draining, or another node took
    /// the room over); a `moved` message before the close says where, else find the
    /// room again through `/match`.
    Moved,
    /// 4001: the token expired during the session; reconnect with a fresh one.
    TokenExpired,
    /// 4002: kicked by an operator.
    Kicked,
    /// 4004: the same account connected again elsewhere; this session was replaced.
    Replaced,
}

impl CloseReason {
    /// Every reason, for documentation and exhaustive tests.
    pub const ALL: [CloseReason; 15] = [
        CloseReason::Normal,
        CloseReason::ShuttingDown,
        CloseReason::ProtocolViolation,
        CloseReason::WrongFrameType,
        CloseReason::InvalidMessage,
        CloseReason::RateLimited,
        CloseReason::SpectatorInput,
        CloseReason::SlowConsumer,
        CloseReason::HeartbeatTimeout,
        CloseReason::MessageTooLarge,
        CloseReason::Internal,
        CloseReason::Moved,
        CloseReason::TokenExpired,
        CloseReason::Kicked,
        CloseReason::Replaced,
    ];

    /// The WebSocket close code.
    pub const fn code(self) -> u16 {
        match self {
            CloseReason::Normal => 1000,
            CloseReason::ShuttingDown => 1001,
            CloseReason::ProtocolViolation => 1002,
            CloseReason::WrongFrameType => 1003,
            CloseReason::InvalidMessage => 1007,
            CloseReason::RateLimited
            | CloseReason::SpectatorInput
            | CloseReason::SlowConsumer
            | CloseReason::HeartbeatTimeout => 1008,
            CloseReason::MessageTooLarge => 1009,
            CloseReason::Internal => 1011,
            CloseReason::Moved => 1012,
            CloseReason::TokenExpired => 4001,
            CloseReason::Kicked => 4002,
            CloseReason::Replaced => 4004,
        }
    }

    /// The `code` of the `{"t":"error"}` message sent before the close.
    pub const fn error_code(self) -> &'static str {
        match self {
            CloseReason::Normal => "normal",
            CloseReason::ShuttingDown => "shutting_down",
            CloseReason::ProtocolViolation => "protocol_violation",
            CloseReason::WrongFrameType => "wrong_frame_type",
            CloseReason::InvalidMessage => "invalid_message",
            CloseReason::RateLimited => "rate_limited",
            CloseReason::SpectatorInput => "spectator_input",
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::HeartbeatTimeout => "heartbeat_timeout",
            CloseReason::MessageTooLarge => "message_too_large",
            CloseReason::Internal => "internal_error",
            CloseReason::Moved => "room_moved",
            CloseReason::TokenExpired => "token_expired",
            CloseReason::Kicked => "kicked",
            CloseReason::Replaced => "replaced",
        }
    }

    /// A short explanation, used as the close frame's reason (at most 123 bytes).
    pub const fn description(self) -> &'static str {
        match self {
            CloseReason::Normal => "bye",
            CloseReason::ShuttingDown => "server shutting down",
            CloseReason::ProtocolViolation => "websocket protocol violation",
            CloseReason::WrongFrameType => "wrong frame type for the negotiated subprotocol",
            CloseReason::InvalidMessage => "message cannot be decoded or is invalid",
            CloseReason::RateLimited => "sustained rate-limit abuse",
            CloseReason::SpectatorInput => "spectators cannot send input",
            CloseReason::SlowConsumer => "client did not keep up with its messages",
            CloseReason::HeartbeatTimeout => "no traffic within the heartbeat timeout",
            CloseReason::MessageTooLarge => "message larger than the limit",
            CloseReason::Internal => "internal server error",
            CloseReason::Moved => {
                "the room moved to another node: reconnect where `moved` says, else through /match"
            }
            CloseReason::TokenExpired => "token expired",
            CloseReason::Kicked => "kicked by an operator",
            CloseReason::Replaced => "replaced by a newer connection of the same account",
        }
    }

    /// Whether an `error` message precedes the close frame.
    pub const fn sends_error(self) -> bool {
        !matches!(self, CloseReason::Normal)
    }

    /// The reason with this code, when exactly one reason uses it.
    pub fn from_code(code: u16) -> Option<CloseReason> {
        let mut it = Self::ALL.into_iter().filter(|r| r.code() == code);
        match (it.next(), it.next()) {
            (Some(r), None) => Some(r),
            _ => None,
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.error_code(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_fit_a_close_frame() {
        for r in CloseReason::ALL {
            assert!(r.description().len() <= 123, "{r}");
        }
    }

    #[test]
    fn codes_match_the_design_table() {
        let table = [
            (CloseReason::Normal, 1000),
            (CloseReason::ShuttingDown, 1001),
            (CloseReason::ProtocolViolation, 1002),
            (CloseReason::WrongFrameType, 1003),
            (CloseReason::InvalidMessage, 1007),
            (CloseReason::RateLimited, 1008),
            (CloseReason::SpectatorInput, 1008),
            (CloseReason::MessageTooLarge, 1009),
            (CloseReason::Internal, 1011),
            (CloseReason::Moved, 1012),
            (CloseReason::TokenExpired, 4001),
            (CloseReason::Kicked, 4002),
            (CloseReason::Replaced, 4004),
        ];
        for (r, code) in table {
            assert_eq!(r.code(), code, "{r:?}");
        }
        assert_eq!(CloseReason::from_code(4004), Some(CloseReason::Replaced));
        assert_eq!(CloseReason::from_code(1008), None);
    }
}
