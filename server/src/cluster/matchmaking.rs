//! Where `/match` sends a player: a pure decision over a [`Snapshot`], time as a
//! parameter.
//!
//! 1. An account with a player in a room (its resume grace runs) goes back there,
//!    whatever it asked for: to the room's host, or, when nobody serves the room (its
//!    owner died), to the node chosen to reopen it.
//! 2. A named room: its host; else the node chosen to open it.
//! 3. Any room: the fullest served room with a free seat on a live, non-draining node
//!    (ties by name); else a new room on the node chosen to open it.
//!
//! The node chosen to open a room is the least loaded live, non-draining node below its
//! room limit: fewest seats taken in the rooms it hosts, then fewest rooms, then id.
//!
//! A decision is only a proposal: the seat is taken by the `reserve` script, which
//! re-checks capacity atomically (and, for a new room, that the directory has not
//! changed since the snapshot). Must not touch Redis or read a clock.

use super::snapshot::{NodeEntry, Snapshot};

/// What to do for one `/match`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Take a seat in a room someone serves (its owner, or the node it is placed on).
    Join {
        /// Room.
        room: String,
        /// Node serving it.
        node: String,
        /// The account has a player there: it resumes.
        resume: bool,
    },
    /// Place a room nobody serves on `node`, then take a seat in it.
    Open {
        /// Room (named by the player, or the room it resumes).
        room: String,
        /// Node chosen to open it.
        node: String,
        /// The account has a player there (its checkpoint restores them): it resumes.
        resume: bool,
    },
    /// No room has a free seat: open a new one on `node`.
    OpenNew {
        /// Node chosen to open it.
        node: String,
    },
    /// No live node can take another room.
    NoCapacity,
}

/// The decision for an account (whose room, if any, is `snap.account`) asking for
/// `wanted` (a room name, or any room) at `now_ms` on the Redis clock.
pub fn decide(snap: &Snapshot, wanted: Option<&str>, now_ms: u64) -> Decision {
    if let Some(account) = snap.account.as_ref().filter(|a| a.member)
        && snap.room(&account.room).is_some()
    {
        return serve_named(snap, &account.room, true, now_ms);
    }
    match wanted {
        Some(room) => serve_named(snap, room, false, now_ms),
        None => fullest_with_a_seat(snap, now_ms).unwrap_or_else(|| {
            opener(snap, now_ms).map_or(Decision::NoCapacity, |node| Decision::OpenNew {
                node: node.id.clone(),
            })
        }),
    }
}

fn serve_named(snap: &Snapshot, room: &str, resume: bool, now_ms: u64) -> Decision {
    if let Some(host) = snap.room(room).and_then(|r| r.host(now_ms)) {
        return Decision::Join {
            room: room.to_owned(),
            node: host.node().to_owned(),
            resume,
        };
    }
    match opener(snap, now_ms) {
        Some(node) => Decision::Open {
            room: room.to_owned(),
            node: node.id.clone(),
            resume,
        },
        None => Decision::NoCapacity,
    }
}

fn accepting(node: &NodeEntry, now_ms: u64) -> bool {
    node.lease_until_ms > now_ms && !node.draining
}

fn fullest_with_a_seat(snap: &Snapshot, now_ms: u64) -> Option<Decision> {
    snap.rooms
        .iter()
        .filter(|r| r.free() > 0)
        .filter_map(|r| {
            let host = r.host(now_ms)?;
            let node = snap.node(host.node()).filter(|n| accepting(n, now_ms))?;
            Some((r, node))
        })
        // Fullest first; among equals the first name, so every matcher agrees.
        .min_by(|(a, _), (b, _)| b.taken().cmp(&a.taken()).then(a.name.cmp(&b.name)))
        .map(|(room, node)| Decision::Join {
            room: room.name.clone(),
            node: node.id.clone(),
            resume: false,
        })
}

/// The node that should open a room now: see the module docs.
fn opener(snap: &Snapshot, now_ms: u64) -> Option<&NodeEntry> {
    let load = |node: &NodeEntry| {
        let hosted = snap
            .rooms
            .iter()
            .filter(|r| r.host(now_ms).is_some_and(|h| h.node() == node.id));
        hosted.fold((0u64, 0u32), |(seats, rooms), r| {
            (seats + u64::from(r.taken()), rooms + 1)
        })
    };
    snap.nodes
        .iter()
        .filter(|n| accepting(n, now_ms))
        .map(|n| (n, load(n)))
        .filter(|(n, (_, rooms))| *rooms < n.max_rooms)
        .min_by(|(a, la), (b, lb)| la.cmp(lb).then(a.id.cmp(&b.id)))
        .map(|(n, _)| n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::snapshot::{AccountRoom, RoomEntry};

    const NOW: u64 = 10_000;

    fn node(id: &str) -> NodeEntry {
        NodeEntry {
            id: id.into(),
            url: format!("ws://{id}:7777"),
            max_rooms: 10,
            room_capacity: 4,
            rooms: 0,
            players: 0,
            draining: false,
            lease_until_ms: NOW + 3000,
            registered_ms: 0,
        }
    }

    fn room(name: &str, owner: &str, members: u32) -> RoomEntry {
        RoomEntry {
            name: name.into(),
            epoch: 1,
            owner: Some(owner.into()),
            lease_until_ms: NOW + 3000,
            placed_on: None,
            placed_until_ms: 0,
            capacity: 4,
            members,
            reserved: 0,
            checkpoint_ms: 0,
        }
    }

    fn snap(nodes: Vec<NodeEntry>, rooms: Vec<RoomEntry>) -> Snapshot {
        Snapshot {
            now_ms: NOW,
            version: 1,
            account: None,
            nodes,
            rooms,
        }
    }

    fn join(room: &str, node: &str, resume: bool) -> Decision {
        Decision::Join {
            room: room.into(),
            node: node.into(),
            resume,
        }
    }

    #[test]
    fn any_room_goes_to_the_fullest_room_with_a_free_seat() {
        let s = snap(
            vec![node("a"), node("b")],
            vec![room("r1", "a", 1), room("r2", "b", 3), room("r3", "a", 4)],
        );
        assert_eq!(decide(&s, None, NOW), join("r2", "b", false));
    }

    #[test]
    fn reservations_count_as_taken_seats() {
        let mut full = room("r2", "b", 2);
        full.reserved = 2;
        let mut nearly = room("r1", "a", 1);
        nearly.reserved = 1;
        let s = snap(vec![node("a"), node("b")], vec![nearly, full]);
        assert_eq!(decide(&s, None, NOW), join("r1", "a", false));
    }

    #[test]
    fn equal_rooms_are_broken_by_name_so_matchers_agree() {
        let s = snap(
            vec![node("a")],
            vec![room("zeta", "a", 2), room("alpha", "a", 2)],
        );
        assert_eq!(decide(&s, None, NOW), join("alpha", "a", false));
    }

    #[test]
    fn no_free_seat_opens_a_new_room_on_the_least_loaded_node() {
        let s = snap(
            vec![node("a"), node("b"), node("c")],
            vec![room("r1", "a", 4), room("r2", "b", 4), room("r3", "b", 4)],
        );
        assert_eq!(
            decide(&s, None, NOW),
            Decision::OpenNew { node: "c".into() }
        );
        let s = snap(
            vec![node("a"), node("b")],
            vec![room("r1", "a", 4), room("r2", "b", 4), room("r3", "b", 4)],
        );
        assert_eq!(
            decide(&s, None, NOW),
            Decision::OpenNew { node: "a".into() }
        );
    }

    #[test]
    fn draining_and_dead_nodes_are_never_chosen() {
        let mut draining = node("a");
        draining.draining = true;
        let mut dead = node("b");
        dead.lease_until_ms = NOW;
        let s = snap(
            vec![draining, dead, node("c")],
            vec![room("on-a", "a", 1), room("on-b", "b", 1)],
        );
        assert_eq!(
            decide(&s, None, NOW),
            Decision::OpenNew { node: "c".into() },
            "rooms of draining and dead nodes take nobody new"
        );
        let s = snap(vec![s.nodes[0].clone(), s.nodes[1].clone()], vec![]);
        assert_eq!(decide(&s, None, NOW), Decision::NoCapacity);
        assert_eq!(decide(&s, Some("x"), NOW), Decision::NoCapacity);
    }

    #[test]
    fn a_node_at_its_room_limit_opens_nothing() {
        let mut small = node("a");
        small.max_rooms = 1;
        let s = snap(vec![small, node("b")], vec![room("r1", "a", 4)]);
        assert_eq!(
            decide(&s, None, NOW),
            Decision::OpenNew { node: "b".into() }
        );
    }

    #[test]
    fn a_named_room_goes_to_its_owner_even_when_full_or_draining() {
        let mut draining = node("a");
        draining.draining = true;
        let s = snap(vec![draining, node("b")], vec![room("arena", "a", 4)]);
        // The reservation says whether a seat is left; the owner is the only answer.
        assert_eq!(decide(&s, Some("arena"), NOW), join("arena", "a", false));
    }

    #[test]
    fn a_named_room_nobody_serves_is_opened_on_the_least_loaded_node() {
        let mut lapsed = room("arena", "a", 2);
        lapsed.lease_until_ms = NOW;
        let s = snap(
            vec![node("a"), node("b")],
            vec![lapsed, room("busy", "a", 3)],
        );
        let expected = Decision::Open {
            room: "arena".into(),
            node: "b".into(),
            resume: false,
        };
        assert_eq!(decide(&s, Some("arena"), NOW), expected);
        assert_eq!(
            decide(&s, Some("new-room"), NOW),
            Decision::Open {
                room: "new-room".into(),
                node: "b".into(),
                resume: false,
            }
        );
    }

    #[test]
    fn a_placed_room_is_served_by_its_node_until_the_placement_lapses() {
        let mut placed = room("arena", "x", 0);
        placed.owner = None;
        placed.placed_on = Some("b".into());
        placed.placed_until_ms = NOW + 5;
        let s = snap(vec![node("a"), node("b")], vec![placed]);
        assert_eq!(decide(&s, Some("arena"), NOW), join("arena", "b", false));
        assert_eq!(decide(&s, None, NOW), join("arena", "b", false));
        assert_eq!(
            decide(&s, Some("arena"), NOW + 5),
            Decision::Open {
                room: "arena".into(),
                node: "a".into(),
                resume: false
            },
            "time is the parameter: the same snapshot later"
        );
    }

    #[test]
    fn a_returning_player_goes_back_whatever_it_asked_for() {
        let mut s = snap(
            vec![node("a"), node("b")],
            vec![room("home", "a", 4), room("other", "b", 1)],
        );
        s.account = Some(AccountRoom {
            room: "home".into(),
            member: true,
        });
        assert_eq!(decide(&s, Some("other"), NOW), join("home", "a", true));
        assert_eq!(decide(&s, None, NOW), join("home", "a", true));
    }

    #[test]
    fn a_returning_player_whose_node_died_reopens_the_room_elsewhere() {
        let mut home = room("home", "a", 3);
        home.lease_until_ms = NOW - 1;
        let mut dead = node("a");
        dead.lease_until_ms = NOW - 1;
        let mut s = snap(vec![dead, node("b")], vec![home]);
        s.account = Some(AccountRoom {
            room: "home".into(),
            member: true,
        });
        assert_eq!(
            decide(&s, None, NOW),
            Decision::Open {
                room: "home".into(),
                node: "b".into(),
                resume: true
            }
        );
    }

    #[test]
    fn a_mere_reservation_or_a_forgotten_room_is_not_a_resume() {
        let mut s = snap(
            vec![node("a")],
            vec![room("r1", "a", 1), room("r2", "a", 2)],
        );
        s.account = Some(AccountRoom {
            room: "r1".into(),
            member: false,
        });
        assert_eq!(decide(&s, None, NOW), join("r2", "a", false));
        s.account = Some(AccountRoom {
            room: "gone".into(),
            member: true,
        });
        assert_eq!(decide(&s, Some("r1"), NOW), join("r1", "a", false));
    }
}
