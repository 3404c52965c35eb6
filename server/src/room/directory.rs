//! The room directory: which rooms exist, where a new session goes, how many seats are
//! taken, and which room holds each account.
//!
//! Seats are counted with atomics in each room's [`RoomShared`] and handed out as RAII
//! [`Seat`]s: a seat is reserved during the handshake (so "room full" is an HTTP 503, not
//! a closed WebSocket), moves into the room with the session, and is released when what
//! holds it goes away, whatever the path.
//!
//! An account's place is an RAII [`Claim`] too: reserved with the seat, carried by the
//! join, kept by the room for as long as the account has a player entity (resume grace
//! included) or a spectator session there, and dropped with it. So a directory entry can
//! never outlive the session or entity that took it, in whatever order a session's end
//! and its join reach the room. One live session per account: a new session of an
//! account replaces the old one (4004), whatever either's role.
//!
//! In cluster mode ([`Directory::clustered`]) a room opens here only once this node has
//! claimed it in the cluster directory: the edge asks [`Directory::reserve_here`] for a
//! seat in a room already open, and when there is none claims the room and then calls
//! [`Directory::reserve_opening`], which opens it (from its checkpoint, if it has one). A
//! room that closes keeps its name ([`PlaceError::Closing`]) until its claim is released,
//! so a new instance can never start under the claim the old one is giving up.
//!
//! The map is behind a mutex held for microseconds and never across an await. Must not
//! touch game state: rooms own that.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::mpsc;

use super::Command;
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
    /// Accounts of a room reopened from a checkpoint whose players wait in it but are not
    /// yet entered in the directory (the room enters them on its first tick): until then
    /// their return is a resume all the same, not a new player needing a free seat.
    restored: Mutex<HashSet<Arc<str>>>,
}

impl RoomShared {
    /// Whether `sub` is a restored player not yet entered in the directory.
    pub fn is_restored(&self, sub: &str) -> bool {
        self.restored_lock().contains(sub)
    }

    /// `sub`'s player waits in the room, restored from a checkpoint.
    pub fn mark_restored(&self, sub: Arc<str>) {
        self.restored_lock().insert(sub);
    }

    /// Every restored player is entered in the directory now.
    pub fn restored_entered(&self) {
        self.restored_lock().clear();
    }

    fn restored_lock(&self) -> std::sync::MutexGuard<'_, HashSet<Arc<str>>> {
        self.restored.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counters for a room with these capacities and nobody in it.
    pub fn new(player_capacity: u16, spectator_capacity: u16) -> RoomShared {
        RoomShared {
            tick: 0.into(),
            players: 0.into(),
            spectators: 0.into(),
            player_capacity: u32::from(player_capacity).into(),
            spectator_capacity: u32::from(spectator_capacity).into(),
            restored: Mutex::default(),
        }
    }
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
    pub(crate) fn force(shared: &Arc<RoomShared>, spectator: bool) -> Seat {
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

/// An account's entry in the directory, held by whatever keeps the account in its room
/// (a reservation, then a player entity or a spectator session). Dropping it removes the
/// entry, unless a newer claim of the same account has replaced it.
#[derive(Debug)]
pub struct Claim {
    directory: Weak<Directory>,
    sub: Arc<str>,
    generation: u64,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(directory) = self.directory.upgrade() {
            let mut inner = directory.lock();
            if inner
                .accounts
                .get(&*self.sub)
                .is_some_and(|e| e.generation == self.generation)
            {
                inner.accounts.remove(&*self.sub);
            }
        }
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
    /// Cluster mode: the room is closing here (idle) and its claim is being released; a
    /// moment later it can be claimed again. 503 `room_closing`.
    #[error("the room is closing")]
    Closing,
}

/// A seat in a room, held until the session joins (or the handshake fails).
#[derive(Debug)]
pub struct Reservation {
    /// The room.
    pub room: RoomHandle,
    /// The seat.
    pub seat: Seat,
    /// The account's entry; `None` when the account's player entity in this room already
    /// holds it (resume or replacement).
    pub claim: Option<Claim>,
}

/// How a room starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opening {
    /// A new game.
    Fresh,
    /// Cluster mode: from the room's last checkpoint (its node died or handed it over);
    /// if the bytes cannot be used the room starts afresh.
    Restore(Vec<u8>),
}

/// Opens a room: spawns its task and returns its handle.
pub type RoomOpener = Box<dyn Fn(Arc<str>, &Arc<Directory>, Opening) -> RoomHandle + Send + Sync>;

#[derive(Debug)]
struct Account {
    room: Arc<str>,
    generation: u64,
    /// A player entity (kept through the resume grace period), not only a spectator.
    player: bool,
}

#[derive(Debug, Default)]
struct Inner {
    rooms: BTreeMap<Arc<str>, RoomHandle>,
    accounts: HashMap<Arc<str>, Account>,
    next_auto: u64,
    next_generation: u64,
    draining: bool,
    /// Cluster mode: rooms closed here whose claim is still being released.
    closing: HashSet<Arc<str>>,
}

/// See the module docs.
pub struct Directory {
    inner: Mutex<Inner>,
    max_rooms: usize,
    open: RoomOpener,
    /// Cluster mode: a room closing keeps its name ([`PlaceError::Closing`]) until its
    /// driver has released the claim ([`Directory::closed`]).
    clustered: bool,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("inner", &self.inner)
            .field("max_rooms", &self.max_rooms)
            .finish_non_exhaustive()
    }
}

/// Room names: 1–32 characters of `A–Z a–z 0–9 - _ .`.
pub fn valid_room_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Directory {
    /// An empty directory that opens at most `max_rooms` rooms with `open`.
    pub fn new(max_rooms: usize, open: RoomOpener) -> Arc<Directory> {
        Directory::build(max_rooms, open, false)
    }

    /// A directory for a cluster node: rooms are opened only under a claim
    /// ([`Directory::reserve_here`], then [`Directory::reserve_opening`]), and a room that
    /// closes keeps its name until [`Directory::closed`].
    pub fn clustered(max_rooms: usize, open: RoomOpener) -> Arc<Directory> {
        Directory::build(max_rooms, open, true)
    }

    fn build(max_rooms: usize, open: RoomOpener, clustered: bool) -> Arc<Directory> {
        Arc::new(Directory {
            inner: Mutex::new(Inner::default()),
            max_rooms,
            open,
            clustered,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves a seat for `sub`, opening the room it needs. An account whose player
    /// entity lives in a room goes back to that room whatever it asked for: that is how
    /// resume and replacement find it. An account with a spectator session elsewhere has
    /// that session replaced.
    pub fn reserve(
        self: &Arc<Self>,
        sub: &str,
        role: Role,
        placement: &Placement,
    ) -> Result<Reservation, PlaceError> {
        let mut inner = self.lock();
        if let Some(r) = self.reserve_open(&mut inner, sub, role, placement)? {
            return Ok(r);
        }
        let name = match placement {
            Placement::Named(name) => name.clone(),
            Placement::Auto => next_auto_name(&mut inner),
        };
        let room = self.open_room(&mut inner, &name, Opening::Fresh)?;
        self.seat_in(&mut inner, sub, role, room)
    }

    /// Cluster mode: like [`Directory::reserve`], but only in a room open here; `None`
    /// when a room would have to be opened (which needs a claim first).
    pub fn reserve_here(
        self: &Arc<Self>,
        sub: &str,
        role: Role,
        placement: &Placement,
    ) -> Result<Option<Reservation>, PlaceError> {
        let mut inner = self.lock();
        self.reserve_open(&mut inner, sub, role, placement)
    }

    /// Cluster mode: reserves a seat in room `name`, claimed by this node, opening it as
    /// `opening` says unless it is open already.
    pub fn reserve_opening(
        self: &Arc<Self>,
        sub: &str,
        role: Role,
        name: &str,
        opening: Opening,
    ) -> Result<Reservation, PlaceError> {
        let mut inner = self.lock();
        let named = Placement::Named(name.to_owned());
        if let Some(r) = self.reserve_open(&mut inner, sub, role, &named)? {
            return Ok(r);
        }
        let room = self.open_room(&mut inner, name, opening)?;
        self.seat_in(&mut inner, sub, role, room)
    }

    /// A seat in a room already open: the account's own room, the named one, or the
    /// fullest with space; `None` when there is none.
    fn reserve_open(
        self: &Arc<Self>,
        inner: &mut Inner,
        sub: &str,
        role: Role,
        placement: &Placement,
    ) -> Result<Option<Reservation>, PlaceError> {
        let spectator = role == Role::Spectator;
        if inner.draining {
            return Err(PlaceError::Draining);
        }
        if let Some(room) = inner
            .accounts
            .get(sub)
            .filter(|a| a.player)
            .and_then(|a| inner.rooms.get(&a.room))
        {
            return Ok(Some(Reservation {
                seat: Seat::force(&room.shared, spectator),
                room: room.clone(),
                claim: None,
            }));
        }
        let room = match placement {
            Placement::Named(name) if inner.closing.contains(name.as_str()) => {
                return Err(PlaceError::Closing);
            }
            Placement::Named(name) => inner.rooms.get(name.as_str()).cloned(),
            Placement::Auto => fullest_with_space(inner, spectator),
        };
        match room {
            Some(room) => self.seat_in(inner, sub, role, room).map(Some),
            None => Ok(None),
        }
    }

    /// A seat for `sub` in `room`, and the account's entry pointing there.
    fn seat_in(
        self: &Arc<Self>,
        inner: &mut Inner,
        sub: &str,
        role: Role,
        room: RoomHandle,
    ) -> Result<Reservation, PlaceError> {
        let spectator = role == Role::Spectator;
        if !spectator && room.shared.is_restored(sub) {
            // A player of a just-reopened room, back before the room entered it in the
            // directory: its entity holds its seat already, as for any resume.
            return Ok(Reservation {
                seat: Seat::force(&room.shared, spectator),
                room,
                claim: None,
            });
        }
        let seat = Seat::try_take(&room.shared, spectator).ok_or(PlaceError::RoomFull)?;
        let previous = inner.accounts.get(sub).map(|a| Arc::clone(&a.room));
        if let Some(old) = previous.filter(|old| *old != room.name)
            && let Some(old) = inner.rooms.get(&old)
        {
            // Its spectator session elsewhere: the room closes it with 4004.
            replace_in(old, sub);
        }
        let claim = self.claim_locked(inner, sub, &room.name, !spectator);
        Ok(Reservation {
            room,
            seat,
            claim: Some(claim),
        })
    }

    /// Where [`Directory::reserve`] would seat `sub` now, without taking a seat: the room's
    /// name and whether the account resumes there (its player entity waits in it).
    pub fn peek(
        &self,
        sub: &str,
        role: Role,
        placement: &Placement,
    ) -> Result<(String, bool), PlaceError> {
        let inner = self.lock();
        if inner.draining {
            return Err(PlaceError::Draining);
        }
        if let Some(a) = inner.accounts.get(sub).filter(|a| a.player)
            && inner.rooms.contains_key(&a.room)
        {
            return Ok((a.room.to_string(), true));
        }
        let spectator = role == Role::Spectator;
        match placement {
            Placement::Named(name) => match inner.rooms.get(name.as_str()) {
                Some(room) if !spectator && room.shared.is_restored(sub) => {
                    Ok((name.clone(), true))
                }
                Some(room) if !has_space(room, spectator) => Err(PlaceError::RoomFull),
                Some(_) => Ok((name.clone(), false)),
                None if inner.rooms.len() >= self.max_rooms => Err(PlaceError::NoRoom),
                None => Ok((name.clone(), false)),
            },
            Placement::Auto => match fullest_with_space(&inner, spectator) {
                Some(room) => Ok((room.name.to_string(), false)),
                None if inner.rooms.len() >= self.max_rooms => Err(PlaceError::NoRoom),
                None => Ok((peek_auto_name(&inner), false)),
            },
        }
    }

    /// Whether room `name` is open here.
    pub fn is_open(&self, name: &str) -> bool {
        self.lock().rooms.contains_key(name)
    }

    /// No room is open or closing here.
    pub fn is_idle(&self) -> bool {
        let inner = self.lock();
        inner.rooms.is_empty() && inner.closing.is_empty()
    }

    /// Whether another room can be opened here now.
    pub fn has_room_for_another(&self) -> bool {
        self.lock().rooms.len() < self.max_rooms
    }

    /// Room side: a claim for an account the room holds without one (an entity created
    /// for a session whose reservation found an entity that has since gone).
    pub fn claim(self: &Arc<Self>, sub: &str, room: &str, player: bool) -> Claim {
        let mut inner = self.lock();
        self.claim_locked(&mut inner, sub, room, player)
    }

    fn claim_locked(
        self: &Arc<Self>,
        inner: &mut Inner,
        sub: &str,
        room: &str,
        player: bool,
    ) -> Claim {
        inner.next_generation += 1;
        let generation = inner.next_generation;
        let sub: Arc<str> = Arc::from(sub);
        inner.accounts.insert(
            Arc::clone(&sub),
            Account {
                room: Arc::from(room),
                generation,
                player,
            },
        );
        Claim {
            directory: Arc::downgrade(self),
            sub,
            generation,
        }
    }

    fn open_room(
        self: &Arc<Self>,
        inner: &mut Inner,
        name: &str,
        opening: Opening,
    ) -> Result<RoomHandle, PlaceError> {
        if inner.rooms.len() >= self.max_rooms {
            return Err(PlaceError::NoRoom);
        }
        let handle = (self.open)(Arc::from(name), self, opening);
        inner.rooms.insert(Arc::clone(&handle.name), handle.clone());
        Ok(handle)
    }

    /// Room side: removes the room if no seat is taken or reserved. Returns whether it
    /// was removed (the room task then ends). In cluster mode the name stays taken until
    /// [`Directory::closed`].
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
        if let Some((name, _)) = inner.rooms.remove_entry(room)
            && self.clustered
        {
            inner.closing.insert(name);
        }
        true
    }

    /// Room side, cluster mode: the room lives elsewhere now (moved out); it leaves the
    /// directory at once, whoever is still in it, and its name stays taken until
    /// [`Directory::closed`].
    pub fn evict(&self, room: &str) {
        let mut inner = self.lock();
        if let Some((name, _)) = inner.rooms.remove_entry(room) {
            inner.closing.insert(name);
        }
    }

    /// Room side, cluster mode: the room's task has ended and its claim is released (or
    /// lost): the name can be claimed and opened again.
    pub fn closed(&self, room: &str) {
        self.lock().closing.remove(room);
    }

    /// Every open room.
    pub fn rooms(&self) -> Vec<RoomHandle> {
        self.lock().rooms.values().cloned().collect()
    }

    /// The room holding `sub` (a player entity or a spectator session), if any.
    pub fn room_of(&self, sub: &str) -> Option<RoomHandle> {
        let inner = self.lock();
        inner
            .accounts
            .get(sub)
            .and_then(|a| inner.rooms.get(&a.room))
            .cloned()
    }

    /// The room an account's entry names, whether or not that room is open (tests).
    #[cfg(any(test, feature = "harness"))]
    pub fn account_room(&self, sub: &str) -> Option<Arc<str>> {
        self.lock().accounts.get(sub).map(|a| Arc::clone(&a.room))
    }

    /// Refuses every reservation from now on.
    pub fn start_draining(&self) {
        self.lock().draining = true;
    }
}

/// The name of the next room [`Directory::reserve`] opens on its own: `room-N`.
fn next_auto_name(inner: &mut Inner) -> String {
    let name = peek_auto_name(inner);
    inner.next_auto = name["room-".len()..].parse().unwrap_or(inner.next_auto + 1);
    name
}

/// The name [`next_auto_name`] would give now.
fn peek_auto_name(inner: &Inner) -> String {
    (inner.next_auto + 1..)
        .map(|n| format!("room-{n}"))
        .find(|name| !inner.rooms.contains_key(name.as_str()))
        .expect("an unused name")
}

/// Whether `room` has a seat of the kind asked for.
fn has_space(room: &RoomHandle, spectator: bool) -> bool {
    let s = &room.shared;
    if spectator {
        s.spectators.load(Ordering::Acquire) < s.spectator_capacity.load(Ordering::Acquire)
    } else {
        s.players.load(Ordering::Acquire) < s.player_capacity.load(Ordering::Acquire)
    }
}

/// The room with the most players that still has a seat of the kind asked for.
fn fullest_with_space(inner: &Inner, spectator: bool) -> Option<RoomHandle> {
    inner
        .rooms
        .values()
        .filter(|r| has_space(r, spectator))
        .max_by_key(|r| {
            (
                r.shared.players.load(Ordering::Acquire),
                std::cmp::Reverse(r.name.clone()),
            )
        })
        .cloned()
}

/// Asks `room` to close `sub`'s session with 4004. The queue is bounded; when it is full
/// the request waits in a task rather than being lost.
fn replace_in(room: &RoomHandle, sub: &str) {
    let cmd = Command::Replace {
        sub: sub.to_owned(),
    };
    if let Err(mpsc::error::TrySendError::Full(cmd)) = room.tx.try_send(cmd)
        && let Ok(rt) = tokio::runtime::Handle::try_current()
    {
        let tx = room.tx.clone();
        rt.spawn(async move {
            let _ = tx.send(cmd).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory whose rooms have two player seats; a reopened room comes back with
    /// `ana` and `bob` waiting in it, their seats held, not yet entered in the directory.
    fn directory() -> Arc<Directory> {
        let open: RoomOpener = Box::new(move |name, _, opening| {
            // Nothing here sends to the room.
            let (tx, _) = mpsc::channel(1);
            let shared = Arc::new(RoomShared::new(2, 0));
            if let Opening::Restore(_) = opening {
                for sub in ["ana", "bob"] {
                    shared.mark_restored(Arc::from(sub));
                    shared.players.fetch_add(1, Ordering::AcqRel);
                }
            }
            RoomHandle { name, tx, shared }
        });
        Directory::clustered(8, open)
    }

    #[test]
    fn players_of_a_reopened_room_come_back_before_its_first_tick_and_strangers_find_it_full() {
        let d = directory();
        let named = Placement::Named("r".into());
        let ana = d.reserve_opening("ana", Role::Player, "r", Opening::Restore(Vec::new()));
        assert!(ana.is_ok(), "{ana:?}");
        assert_eq!(d.peek("bob", Role::Player, &named), Ok(("r".into(), true)));
        let bob = d.reserve_here("bob", Role::Player, &named);
        assert!(matches!(bob, Ok(Some(_))), "{bob:?}");
        let carol = d.reserve_here("carol", Role::Player, &named);
        assert!(matches!(carol, Err(PlaceError::RoomFull)), "{carol:?}");
        // Once the room has entered them, they are known by their accounts instead.
        let _entered = d.claim("bob", "r", true);
        d.rooms()[0].shared.restored_entered();
        assert_eq!(d.peek("bob", Role::Player, &named), Ok(("r".into(), true)));
        let late = d.reserve_here("bob", Role::Player, &named);
        assert!(matches!(late, Ok(Some(_))), "{late:?}");
        let carol = d.reserve_here("carol", Role::Player, &named);
        assert!(matches!(carol, Err(PlaceError::RoomFull)), "{carol:?}");
    }
}
