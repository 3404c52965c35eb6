//! The room directory: which rooms exist, where a new player goes, how many seats are
//! taken, and which room holds each account.
//!
//! Seats are counted with atomics in each room's [`RoomShared`] and handed out as RAII
//! [`Seat`]s: a seat is reserved during the handshake (so "room full" is an HTTP 503,
//! not a closed WebSocket), moves into the room with the player, and is released when the
//! player entity goes away, whatever the path.
//!
//! The directory's map is behind a mutex held for microseconds and never across an
//! await. It must not touch game state: rooms own that.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::{Command, RoomContext, task};
use crate::auth::Role;

/// Shared counters of one room, readable without asking the room.
#[derive(Debug)]
pub struct RoomShared {
    /// Current simulation tick (for `pong`).
    pub tick: AtomicU32,
    /// Player seats taken (entities, including those awaiting resume, plus reservations).
    pub players: AtomicU32,
    /// Spectator seats taken.
    pub spectators: AtomicU32,
    /// Player capacity in force (follows asset reloads).
    pub player_capacity: AtomicU32,
    /// Spectator capacity in force.
    pub spectator_capacity: AtomicU32,
}

/// How sessions and the admin API reach a room.
#[derive(Debug, Clone)]
pub struct RoomHandle {
    /// Room name.
    pub name: Arc<str>,
    /// The room's command queue (bounded; see [`crate::config::Limits::room_queue_per_player`]).
    pub tx: mpsc::Sender<Command>,
    /// Counters.
    pub shared: Arc<RoomShared>,
}

/// A reserved seat; dropping it frees the seat.
#[derive(Debug)]
pub struct Seat {
    shared: Arc<RoomShared>,
    spectator: bool,
}

impl Seat {
    fn counter(shared: &RoomShared, spectator: bool) -> &AtomicU32 {
        if spectator {
            &shared.spectators
        } else {
            &shared.players
        }
    }

    fn try_take(shared: &Arc<RoomShared>, spectator: bool) -> Option<Seat> {
        let cap = if spectator {
            &shared.spectator_capacity
        } else {
            &shared.player_capacity
        };
        Seat::counter(shared, spectator)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap.load(Ordering::Acquire)).then_some(n + 1)
            })
            .ok()
            .map(|_| Seat {
                shared: Arc::clone(shared),
                spectator,
            })
    }

    /// A seat regardless of capacity: for an account that already has an entity in the
    /// room (resume or replacement), which the room turns back into one seat.
    pub(super) fn force(shared: &Arc<RoomShared>, spectator: bool) -> Seat {
        Seat::counter(shared, spectator).fetch_add(1, Ordering::AcqRel);
        Seat {
            shared: Arc::clone(shared),
            spectator,
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        Seat::counter(&self.shared, self.spectator).fetch_sub(1, Ordering::AcqRel);
    }
}

/// Where a player asked to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// A named room (`?room=` or the token's `room` claim), created if missing.
    Named(String),
    /// Anywhere: the fullest room with space, else a new one.
    Auto,
}

/// Why no seat could be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    /// The named room is full: 503 `room_full`.
    #[error("room is full")]
    RoomFull,
    /// The room cap is reached and no room has space: 503 `server_full`.
    #[error("no room has space and no new room can be opened")]
    NoRoom,
    /// The server is shutting down: 503 `draining`.
    #[error("server is draining")]
    Draining,
}

/// A seat in a room, held until the session joins (or the handshake fails).
#[derive(Debug)]
pub struct Reservation {
    /// The room.
    pub room: RoomHandle,
    /// The seat.
    pub seat: Seat,
}

#[derive(Debug, Default)]
struct Inner {
    rooms: BTreeMap<Arc<str>, RoomHandle>,
    /// Room of every account with a player entity (or a reservation for one).
    subs: HashMap<String, Arc<str>>,
    next_auto: u64,
    draining: bool,
}

/// See the module docs.
#[derive(Debug)]
pub struct Directory {
    inner: Mutex<Inner>,
    ctx: RoomContext,
}

/// Room names: 1–32 characters of `A–Z a–z 0–9 - _ .`.
pub fn valid_room_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Directory {
    /// An empty directory whose rooms get `ctx`.
    pub fn new(ctx: RoomContext) -> Arc<Directory> {
        Arc::new(Directory {
            inner: Mutex::new(Inner::default()),
            ctx,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves a seat for `sub`. A player whose account already has an entity goes back
    /// to that room whatever it asked for: that is how resume and replacement find it.
    pub fn reserve(
        self: &Arc<Self>,
        sub: &str,
        role: Role,
        placement: &Placement,
    ) -> Result<Reservation, PlaceError> {
        let spectator = role == Role::Spectator;
        let mut inner = self.lock();
        if inner.draining {
            return Err(PlaceError::Draining);
        }
        if !spectator && let Some(room) = inner.subs.get(sub).and_then(|name| inner.rooms.get(name))
        {
            return Ok(Reservation {
                seat: Seat::force(&room.shared, false),
                room: room.clone(),
            });
        }
        let room = match placement {
            Placement::Named(name) => match inner.rooms.get(name.as_str()) {
                Some(room) => room.clone(),
                None => self.open_room(&mut inner, name)?,
            },
            Placement::Auto => {
                let counter = |r: &RoomHandle| {
                    if spectator {
                        r.shared.spectators.load(Ordering::Acquire)
                    } else {
                        r.shared.players.load(Ordering::Acquire)
                    }
                };
                let cap = |r: &RoomHandle| {
                    if spectator {
                        r.shared.spectator_capacity.load(Ordering::Acquire)
                    } else {
                        r.shared.player_capacity.load(Ordering::Acquire)
                    }
                };
                let fullest = inner
                    .rooms
                    .values()
                    .filter(|r| counter(r) < cap(r))
                    .max_by_key(|r| {
                        (
                            r.shared.players.load(Ordering::Acquire),
                            std::cmp::Reverse(r.name.clone()),
                        )
                    })
                    .cloned();
                match fullest {
                    Some(room) => room,
                    None => {
                        let name = loop {
                            inner.next_auto += 1;
                            let candidate = format!("room-{}", inner.next_auto);
                            if !inner.rooms.contains_key(candidate.as_str()) {
                                break candidate;
                            }
                        };
                        self.open_room(&mut inner, &name)?
                    }
                }
            }
        };
        let seat = Seat::try_take(&room.shared, spectator).ok_or(PlaceError::RoomFull)?;
        if !spectator {
            inner.subs.insert(sub.to_owned(), Arc::clone(&room.name));
        }
        Ok(Reservation { room, seat })
    }

    fn open_room(
        self: &Arc<Self>,
        inner: &mut Inner,
        name: &str,
    ) -> Result<RoomHandle, PlaceError> {
        if inner.rooms.len() >= self.ctx.limits.max_rooms {
            return Err(PlaceError::NoRoom);
        }
        let handle = task::spawn(Arc::from(name), self.ctx.clone(), Arc::clone(self));
        inner.rooms.insert(Arc::clone(&handle.name), handle.clone());
        Ok(handle)
    }

    /// Room side: the entity of `sub` is gone from `room` for good.
    pub fn forget_sub(&self, sub: &str, room: &str) {
        let mut inner = self.lock();
        if inner.subs.get(sub).is_some_and(|r| &**r == room) {
            inner.subs.remove(sub);
        }
    }

    /// Room side: removes the room if no seat is taken or reserved. Returns whether it
    /// was removed (the room task then ends).
    pub fn close_if_idle(&self, room: &str) -> bool {
        let mut inner = self.lock();
        let Some(handle) = inner.rooms.get(room) else {
            return true;
        };
        if handle.shared.players.load(Ordering::Acquire) > 0
            || handle.shared.spectators.load(Ordering::Acquire) > 0
        {
            return false;
        }
        inner.rooms.remove(room);
        inner.subs.retain(|_, r| &**r != room);
        true
    }

    /// Every open room.
    pub fn rooms(&self) -> Vec<RoomHandle> {
        self.lock().rooms.values().cloned().collect()
    }

    /// The room holding `sub`'s entity, if any.
    pub fn room_of(&self, sub: &str) -> Option<RoomHandle> {
        let inner = self.lock();
        inner
            .subs
            .get(sub)
            .and_then(|r| inner.rooms.get(r))
            .cloned()
    }

    /// Refuses every reservation from now on.
    pub fn start_draining(&self) {
        self.lock().draining = true;
    }
}
