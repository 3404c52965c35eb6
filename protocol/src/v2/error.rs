//! Every way a v2 snapshot can be wrong for a client, and every way the server's input to
//! the encoder can be unusable. Plain data: must not carry the offending bytes (errors are
//! logged and counted, and a frame can be large).

/// Why a client could not apply a snapshot frame. After any of these the client's state is
/// unusable: it drops it, sends `{"t":"resync"}` once ([`V2Error::needs_resync`]) and
/// ignores deltas until a keyframe arrives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum V2Error {
    /// The frame is not a well-formed snapshot map (what was wrong is named).
    #[error("malformed snapshot frame: {0}")]
    Malformed(&'static str),
    /// The body ends in the middle of a value.
    #[error("snapshot body truncated")]
    Truncated,
    /// A varint longer than 5 bytes (no v2 value needs more).
    #[error("varint longer than 5 bytes")]
    VarintTooLong,
    /// Bytes left after the last piece.
    #[error("{0} bytes after the end of the snapshot body")]
    TrailingBytes(usize),
    /// A count that the remaining bytes cannot hold.
    #[error("{count} {what} declared, but only {bytes} bytes remain")]
    CountTooLarge {
        /// What was counted (`removals`, `pieces`).
        what: &'static str,
        /// The declared count.
        count: u64,
        /// Bytes left in the body.
        bytes: usize,
    },
    /// An entity id at or above [`super::ID_LIMIT`].
    #[error("entity id {0} is out of range")]
    IdOutOfRange(u64),
    /// Ids of a section are not strictly ascending (this includes duplicates).
    #[error("entity id {0} is not above the previous one")]
    Unordered(u32),
    /// A delta whose baseline is not the tick this client holds: resync.
    #[error("delta against tick {baseline}, but this client holds tick {held}")]
    BaselineMismatch {
        /// The frame's baseline tick (`n - b`).
        baseline: u32,
        /// The tick of the state the client holds.
        held: u32,
    },
    /// A delta arrived while the client holds no state (before the first keyframe, or
    /// after an error). Not a new desync: the resync was already asked for.
    #[error("delta while awaiting a keyframe")]
    AwaitingKeyframe,
    /// A removal or a delta names an entity the client does not hold.
    #[error("entity {0} is not held")]
    UnknownEntity(u32),
    /// A keyframe with removals.
    #[error("a keyframe cannot remove entities")]
    RemovalInKeyframe,
    /// A piece's mask has bits its kind does not define.
    #[error("entity {id}: mask {mask:#x} is not valid for kind {kind}")]
    BadMask {
        /// Entity id.
        id: u32,
        /// Its kind.
        kind: u8,
        /// The mask read.
        mask: u64,
    },
    /// A motion record that is not after the one it replaces, or refers before tick 0.
    #[error("entity {id}: motion record age {age} is not valid at tick {tick}")]
    BadAge {
        /// Entity id.
        id: u32,
        /// The age read.
        age: u64,
        /// The frame's tick.
        tick: u32,
    },
    /// A value outside its field's range (the field is named: `x`, `y` or the schema's).
    #[error("entity {id}: {field} out of range")]
    OutOfRange {
        /// Entity id.
        id: u32,
        /// The field's name.
        field: String,
    },
    /// The state after applying the frame does not hash to the frame's `h`: resync.
    #[error("state hash {computed:#010x} differs from the server's {expected:#010x}")]
    HashMismatch {
        /// The frame's `h`.
        expected: u32,
        /// What this client's state hashes to.
        computed: u32,
    },
    /// The schema from `welcome` is unusable.
    #[error("schema: {0}")]
    Schema(String),
}

impl V2Error {
    /// Whether the client must send `{"t":"resync"}` now. False only for
    /// [`V2Error::AwaitingKeyframe`], whose resync was sent when the state was lost.
    pub fn needs_resync(&self) -> bool {
        !matches!(self, V2Error::AwaitingKeyframe)
    }
}

/// Why the encoder refused a snapshot's rows. The engine's rows break a documented rule;
/// nothing was changed, and the previous state stays the baseline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A wire id at or above [`super::ID_LIMIT`].
    #[error("wire id {0} is out of range for v2 (ids must be below 65536)")]
    IdOutOfRange(u32),
    /// Two rows with the same id.
    #[error("wire id {0} appears twice in one snapshot")]
    DuplicateId(u32),
    /// Snapshot ticks must increase.
    #[error("tick {tick} is not after the previous snapshot tick {previous}")]
    TickNotIncreasing {
        /// The tick given.
        tick: u32,
        /// The previous snapshot's tick.
        previous: u32,
    },
    /// The schema cannot be encoded.
    #[error("schema: {0}")]
    Schema(String),
}
