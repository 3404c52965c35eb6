//! The per-tick encoder and the per-recipient assembly: what the room calls.
//!
//! [`Encoder::begin_tick`] takes the game's rows and updates the global records, then
//! [`Encoder::encode_for`] builds each recipient's frame: a small header of its own (tick,
//! baseline, `ack`, sometimes the state hash) and a body. Work is shared across recipients
//! wherever the bytes are the same: each entity's full row and each distinct delta are
//! encoded once per tick into an arena and a body is a concatenation of cached pieces;
//! recipients that see everything and hold the same baseline share one body outright (the
//! common case on a small map: one body per tick for the whole room). Pure: it must not
//! read a clock or touch an outbox; the caller measures time and pushes frames.

use bytes::{Bytes, BytesMut};

use crate::rows::{RowSchema, Rows};

use super::EncodeError;
use super::bits::IdSet;
use super::interest::{Grid, Interest, Reach};
use super::member::Member;
use super::piece::{write_delta, write_full};
use super::quant::{Fnv1a, Layout};
use super::state::{Change, WireState};
use super::wire::{put_uvar, uvar_len};

/// Longest frame header: a map of six keys with 32-bit values and a `bin 32` length.
pub const HEADER_MAX: usize = 40;

/// How the room runs the encoder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncoderConfig {
    /// Simulation ticks per second: dead reckoning's time base (`welcome.tick_rate`).
    pub tick_rate: u16,
    /// Each player's view (radius 0: everyone sees everything).
    pub interest: Interest,
    /// Ticks between state hashes in one recipient's frames. The tick rate (about once a
    /// second) catches a desync within a second for one 7-byte header entry per second.
    pub hash_interval: u32,
}

impl EncoderConfig {
    /// Everything in view, a hash about once a second.
    pub fn new(tick_rate: u16) -> EncoderConfig {
        EncoderConfig {
            tick_rate,
            interest: Interest::default(),
            hash_interval: u32::from(tick_rate).max(1),
        }
    }
}

/// What a recipient sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Every entity (spectators; every player when the interest radius is 0).
    Everything,
    /// The entities around this entity (the player's own). While it is absent the view
    /// stays where it was last; before it ever appeared the view is empty.
    Around(u32),
}

/// Full state or changes since the recipient's baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// Baseline 0: the client replaces its state.
    Keyframe,
    /// Changes since the baseline the client holds.
    Delta,
}

impl FrameKind {
    /// `keyframe` or `delta`, for metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            FrameKind::Keyframe => "keyframe",
            FrameKind::Delta => "delta",
        }
    }
}

/// Where a frame's bytes went, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameBytes {
    /// The MessagePack header (per recipient).
    pub header: u64,
    /// The removal list, its count included.
    pub removals: u64,
    /// Full rows (keyframes, entities new to the recipient).
    pub full: u64,
    /// Deltas, the piece count included.
    pub delta: u64,
}

impl FrameBytes {
    /// Every byte of the frame.
    pub fn total(&self) -> u64 {
        self.header + self.removals + self.full + self.delta
    }

    /// Adds another frame's bytes, part by part (for running totals).
    pub fn add(&mut self, o: &FrameBytes) {
        self.header += o.header;
        self.removals += o.removals;
        self.full += o.full;
        self.delta += o.delta;
    }
}

/// Running totals since the encoder was made, for the room's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncoderStats {
    /// Keyframes handed out.
    pub keyframes: u64,
    /// Deltas handed out.
    pub deltas: u64,
    /// Bytes of the keyframes handed out (whole messages).
    pub keyframe_bytes: u64,
    /// Bytes of the deltas handed out (whole messages).
    pub delta_bytes: u64,
    /// Bytes handed out, by part (header, removals, full rows, deltas).
    pub bytes: FrameBytes,
    /// Bodies assembled (the rest were shared).
    pub bodies: u64,
    /// Pieces encoded into the per-tick cache.
    pub pieces: u64,
}

/// One recipient's frame: `header` then `body` is the whole WebSocket message. The body
/// may be shared with other recipients.
#[derive(Debug, Clone)]
pub struct Frame {
    header: [u8; HEADER_MAX],
    header_len: u8,
    /// The `bin` payload, shared where possible.
    pub body: Bytes,
    /// Keyframe or delta.
    pub kind: FrameKind,
    /// The snapshot's tick.
    pub tick: u32,
    /// The tick the delta applies to (`None` for a keyframe).
    pub baseline: Option<u32>,
    /// The state hash, when this frame carries one.
    pub hash: Option<u32>,
    /// Byte accounting.
    pub bytes: FrameBytes,
}

impl Frame {
    /// The per-recipient bytes before the body.
    pub fn header(&self) -> &[u8] {
        &self.header[..usize::from(self.header_len)]
    }

    /// Length of the whole message.
    pub fn len(&self) -> usize {
        usize::from(self.header_len) + self.body.len()
    }

    /// Never true: a frame has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Appends the whole message.
    pub fn write_to(&self, out: &mut BytesMut) {
        out.extend_from_slice(self.header());
        out.extend_from_slice(&self.body);
    }

    /// The whole message as one buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.len());
        self.write_to(&mut out);
        out.freeze()
    }
}

/// The room's v2 encoder; see the module docs.
#[derive(Debug)]
pub struct Encoder {
    layout: Layout,
    config: EncoderConfig,
    reach: Reach,
    state: WireState,
    cache: Cache,
    grid: Grid,
    view: IdSet,
    out: BytesMut,
    stats: EncoderStats,
}

/// A body shared by every everything-view recipient holding the same baseline.
#[derive(Debug, Clone)]
struct Shared {
    baseline: Option<u32>,
    body: Bytes,
    kind: FrameKind,
    bytes: FrameBytes,
}

/// Pieces and bodies of the current tick.
#[derive(Debug, Clone, Default)]
struct Cache {
    arena: Vec<u8>,
    /// Per id: the full row's range in `arena`.
    full: Vec<Option<(u32, u32)>>,
    /// Per id: up to two deltas `(mask, start, len)`; mask 0 is a free entry.
    delta: Vec<[(u32, u32, u32); 2]>,
    shared: Vec<Shared>,
    live_hash: Option<u32>,
    /// Scratch: the pieces of the body being assembled, `(start, len, full)`.
    pieces: Vec<(u32, u32, bool)>,
    encoded: u64,
}

impl Encoder {
    /// An encoder for a game's schema.
    pub fn new(schema: &RowSchema, config: EncoderConfig) -> Result<Encoder, EncodeError> {
        let layout = Layout::new(schema, config.tick_rate).map_err(EncodeError::Schema)?;
        let reach = Reach::new(config.interest, layout.position_scale);
        Ok(Encoder {
            layout,
            config,
            reach,
            state: WireState::default(),
            cache: Cache::default(),
            grid: Grid::default(),
            view: IdSet::default(),
            out: BytesMut::new(),
            stats: EncoderStats::default(),
        })
    }

    /// Takes snapshot `tick`'s rows: updates every record (see [`super::state`]) and
    /// forgets the previous tick's pieces. On an error nothing changes and no frame
    /// should be sent this tick.
    pub fn begin_tick(&mut self, tick: u32, rows: &Rows) -> Result<(), EncodeError> {
        self.state.update(&self.layout, tick, rows)?;
        self.cache.reset(self.state.slots.len());
        Ok(())
    }

    /// The tick of the last [`Encoder::begin_tick`].
    pub fn tick(&self) -> Option<u32> {
        self.state.tick
    }

    /// Running totals.
    pub fn stats(&self) -> EncoderStats {
        self.stats
    }

    /// The frame for one recipient at the current tick. `taken` is the tick of the last
    /// snapshot its session took from the outbox (`None` if none yet); the frame is a
    /// delta against it when this member knows that tick, else a keyframe. The engine
    /// must push the frame only if the session has not taken another snapshot since it
    /// read `taken` (a frame against a stale baseline would desync the client).
    ///
    /// # Panics
    /// If [`Encoder::begin_tick`] was never called.
    pub fn encode_for(
        &mut self,
        member: &mut Member,
        taken: Option<u32>,
        view: View,
        ack: u32,
    ) -> Frame {
        let tick = self.state.tick.expect("begin_tick before encode_for");
        member.take(taken);
        let everything = view == View::Everything || self.config.interest.is_everything();
        let (body, kind, mut bytes) = if everything {
            self.everything_body(member)
        } else {
            self.around_body(member, view)
        };
        let known = if everything {
            &self.state.live
        } else {
            &self.view
        };
        let hash = (kind == FrameKind::Keyframe
            || member.hash_due(tick, self.config.hash_interval))
        .then(|| match everything {
            true => *self
                .cache
                .live_hash
                .get_or_insert_with(|| hash_of(&self.layout, &self.state, &self.state.live)),
            false => hash_of(&self.layout, &self.state, &self.view),
        });
        let baseline = match kind {
            FrameKind::Keyframe => None,
            FrameKind::Delta => member.baseline().map(|(t, _)| t),
        };
        member.record(tick, known, everything, kind == FrameKind::Keyframe);
        if hash.is_some() {
            member.last_hash = Some(tick);
        }
        let (header, header_len) = write_header(tick, baseline, ack, hash, body.len());
        bytes.header = header_len as u64;
        self.count(kind, &bytes);
        Frame {
            header,
            header_len: header_len as u8,
            body,
            kind,
            tick,
            baseline,
            hash,
            bytes,
        }
    }

    fn count(&mut self, kind: FrameKind, bytes: &FrameBytes) {
        match kind {
            FrameKind::Keyframe => {
                self.stats.keyframes += 1;
                self.stats.keyframe_bytes += bytes.total();
            }
            FrameKind::Delta => {
                self.stats.deltas += 1;
                self.stats.delta_bytes += bytes.total();
            }
        }
        self.stats.bytes.add(bytes);
        self.stats.pieces += std::mem::take(&mut self.cache.encoded);
    }

    /// The body for a recipient that sees every live entity: shared by baseline when the
    /// recipient's baseline was an everything frame too.
    fn everything_body(&mut self, member: &Member) -> (Bytes, FrameKind, FrameBytes) {
        let base = member.baseline();
        let key = base.filter(|(_, b)| b.everything).map(|(t, _)| t);
        let shareable = base.is_none() || key.is_some();
        let cached = self.cache.shared.iter().find(|s| s.baseline == key);
        if let Some(s) = cached.filter(|_| shareable) {
            return (s.body.clone(), s.kind, s.bytes);
        }
        let base = base.map(|(t, b)| (t, &b.known));
        let (kind, bytes) = build_body(
            &self.layout,
            &self.state,
            &mut self.cache,
            base,
            &self.state.live,
            &mut self.out,
        );
        let body = self.out.split().freeze();
        self.stats.bodies += 1;
        if shareable {
            self.cache.shared.push(Shared {
                baseline: key,
                body: body.clone(),
                kind,
                bytes,
            });
        }
        (body, kind, bytes)
    }

    /// The body for a recipient with a radius view around `view`'s entity.
    fn around_body(&mut self, member: &mut Member, view: View) -> (Bytes, FrameKind, FrameBytes) {
        match view {
            View::Around(id) if self.state.live.contains(id) => {
                member.center = Some(self.state.slots[id as usize].now);
            }
            _ => {}
        }
        let base = member.baseline().map(|(t, b)| (t, &b.known));
        match member.center {
            Some(center) => {
                self.grid.build(&self.state, self.reach.stay);
                self.grid
                    .view(&self.state, self.reach, center, base, &mut self.view);
            }
            None => self.view.clear(),
        }
        let (kind, bytes) = build_body(
            &self.layout,
            &self.state,
            &mut self.cache,
            base,
            &self.view,
            &mut self.out,
        );
        self.stats.bodies += 1;
        (self.out.split().freeze(), kind, bytes)
    }
}

/// FNV-1a over the records of `ids`, ascending (PROTOCOL.md, "State hash").
fn hash_of(layout: &Layout, state: &WireState, ids: &IdSet) -> u32 {
    let mut h = Fnv1a::new();
    for id in ids.iter() {
        layout.hash_record(&mut h, id, &state.slots[id as usize].rec);
    }
    h.finish()
}

/// Writes the body that takes a client from `base` (its tick and known set; `None` for a
/// keyframe) to the entities `now` at the current tick, or a keyframe when that is
/// smaller.
fn build_body(
    layout: &Layout,
    state: &WireState,
    cache: &mut Cache,
    base: Option<(u32, &IdSet)>,
    now: &IdSet,
    out: &mut BytesMut,
) -> (FrameKind, FrameBytes) {
    out.clear();
    let Some((tick, known)) = base else {
        return (
            FrameKind::Keyframe,
            keyframe(layout, state, cache, now, out),
        );
    };
    let mut bytes = FrameBytes::default();
    put_uvar(out, known.minus(now).count() as u64);
    for id in known.minus(now) {
        put_uvar(out, u64::from(id));
    }
    bytes.removals = out.len() as u64;
    cache.pieces.clear();
    for id in now.iter() {
        let change = match known.contains(id) {
            false => Change::Full,
            true => state.change_since(layout, id, tick),
        };
        let piece = match change {
            Change::None => continue,
            Change::Full => cache.full(layout, state, id),
            Change::Delta(mask) => cache.delta(layout, state, id, mask),
        };
        cache.pieces.push(piece);
    }
    bytes.delta = uvar_len(cache.pieces.len() as u64) as u64;
    put_pieces(cache, out, &mut bytes);
    let len = out.len();
    // A keyframe has at least 4 bytes per entity (id, kind, x, y): below that bound the
    // delta is smaller without encoding every full row to find out.
    if len <= 2 + 4 * now.len() || len <= keyframe_len(layout, state, cache, now) {
        return (FrameKind::Delta, bytes);
    }
    out.clear();
    (
        FrameKind::Keyframe,
        keyframe(layout, state, cache, now, out),
    )
}

fn keyframe(
    layout: &Layout,
    state: &WireState,
    cache: &mut Cache,
    now: &IdSet,
    out: &mut BytesMut,
) -> FrameBytes {
    let mut bytes = FrameBytes {
        removals: 1,
        ..FrameBytes::default()
    };
    out.extend_from_slice(&[0]);
    cache.pieces.clear();
    for id in now.iter() {
        let piece = cache.full(layout, state, id);
        cache.pieces.push(piece);
    }
    bytes.delta = uvar_len(cache.pieces.len() as u64) as u64;
    put_pieces(cache, out, &mut bytes);
    bytes
}

fn keyframe_len(layout: &Layout, state: &WireState, cache: &mut Cache, now: &IdSet) -> usize {
    let mut len = 1 + uvar_len(now.len() as u64);
    for id in now.iter() {
        len += cache.full(layout, state, id).1 as usize;
    }
    len
}

/// Appends the count and the pieces gathered in `cache.pieces`.
fn put_pieces(cache: &Cache, out: &mut BytesMut, bytes: &mut FrameBytes) {
    put_uvar(out, cache.pieces.len() as u64);
    for &(start, len, full) in &cache.pieces {
        out.extend_from_slice(&cache.arena[start as usize..(start + len) as usize]);
        if full {
            bytes.full += u64::from(len);
        } else {
            bytes.delta += u64::from(len);
        }
    }
}

impl Cache {
    fn reset(&mut self, slots: usize) {
        self.arena.clear();
        self.full.clear();
        self.full.resize(slots, None);
        self.delta.clear();
        self.delta.resize(slots, [(0, 0, 0); 2]);
        self.shared.clear();
        self.live_hash = None;
    }

    /// The full row of `id`: `(start, len, true)`.
    fn full(&mut self, layout: &Layout, state: &WireState, id: u32) -> (u32, u32, bool) {
        if let Some((start, len)) = self.full[id as usize] {
            return (start, len, true);
        }
        let start = self.arena.len();
        let tick = state.tick.unwrap_or(0);
        write_full(layout, id, &state.slots[id as usize], tick, &mut self.arena);
        let piece = (start as u32, (self.arena.len() - start) as u32);
        self.full[id as usize] = Some(piece);
        self.encoded += 1;
        (piece.0, piece.1, true)
    }

    /// The delta of `id` with `mask`, or its full row when the delta cannot be written.
    fn delta(
        &mut self,
        layout: &Layout,
        state: &WireState,
        id: u32,
        mask: u32,
    ) -> (u32, u32, bool) {
        let entries = self.delta[id as usize];
        if let Some(&(_, start, len)) = entries.iter().find(|e| e.0 == mask) {
            return (start, len, false);
        }
        let start = self.arena.len();
        let tick = state.tick.unwrap_or(0);
        let slot = &state.slots[id as usize];
        if !write_delta(layout, id, slot, mask, tick, &mut self.arena) {
            return self.full(layout, state, id);
        }
        let piece = (start as u32, (self.arena.len() - start) as u32);
        if let Some(free) = self.delta[id as usize].iter_mut().find(|e| e.0 == 0) {
            *free = (mask, piece.0, piece.1);
        }
        self.encoded += 1;
        (piece.0, piece.1, false)
    }
}

/// The frame header: `{"t":"s","n":tick,"b":tick - baseline,"a":ack,["h":hash,]"d":<bin
/// len>}` (`b` 0 for a keyframe), the `bin` payload (the body) following it directly.
/// MessagePack written by hand (each integer in its shortest form): this runs once per
/// recipient per tick.
fn write_header(
    tick: u32,
    baseline: Option<u32>,
    ack: u32,
    hash: Option<u32>,
    body_len: usize,
) -> ([u8; HEADER_MAX], usize) {
    let mut h = HeaderBuf {
        buf: [0; HEADER_MAX],
        len: 0,
    };
    h.put(&[0x85 + u8::from(hash.is_some()), 0xa1, b't', 0xa1, b's']);
    for (key, value) in [
        (b'n', Some(tick)),
        (b'b', Some(baseline.map_or(0, |b| tick - b))),
        (b'a', Some(ack)),
        (b'h', hash),
    ] {
        if let Some(v) = value {
            h.put(&[0xa1, key]);
            h.uint(v);
        }
    }
    h.put(&[0xa1, b'd']);
    let n = body_len as u32;
    match n {
        0..=0xff => h.put(&[0xc4, n as u8]),
        0x100..=0xffff => h.put(&[0xc5, (n >> 8) as u8, n as u8]),
        _ => {
            h.put(&[0xc6]);
            h.put(&n.to_be_bytes());
        }
    }
    (h.buf, h.len)
}

struct HeaderBuf {
    buf: [u8; HEADER_MAX],
    len: usize,
}

impl HeaderBuf {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// A MessagePack unsigned integer in its shortest form.
    fn uint(&mut self, v: u32) {
        match v {
            0..=0x7f => self.put(&[v as u8]),
            0x80..=0xff => self.put(&[0xcc, v as u8]),
            0x100..=0xffff => self.put(&[0xcd, (v >> 8) as u8, v as u8]),
            _ => {
                self.put(&[0xce]);
                self.put(&v.to_be_bytes());
            }
        }
    }
}

#[cfg(test)]
impl Encoder {
    /// The ids and the state hash the member's last frame leaves its client with.
    pub(crate) fn expected(&self, member: &Member) -> (Vec<u32>, u32) {
        let known = member.last_sent().expect("a frame was encoded");
        (
            known.iter().collect(),
            hash_of(&self.layout, &self.state, known),
        )
    }

    /// The quantized true position of a live entity.
    pub(crate) fn position(&self, id: u32) -> Option<[i64; 2]> {
        self.state
            .live
            .contains(id)
            .then(|| self.state.slots[id as usize].now)
    }
}
