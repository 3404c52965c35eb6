//! The directory as one consistent view: live nodes, listed rooms, and where one account
//! is. Read by one script call, so every count in it belongs to the same instant of the
//! Redis clock ([`Snapshot::now_ms`]).
//!
//! Plain data: the matchmaking decision and the admin API read it; nothing here talks to
//! Redis or reads a clock.

use serde::Serialize;

use super::DirectoryError;
use super::reply::Reply;

/// A live node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeEntry {
    /// Node id.
    pub id: String,
    /// Base URL its clients connect to (`ws[s]://HOST:PORT`).
    pub url: String,
    /// Rooms it may host at once.
    pub max_rooms: u32,
    /// Seats of a room it opens.
    pub room_capacity: u32,
    /// Rooms it reported in its last heartbeat.
    pub rooms: u32,
    /// Players it reported in its last heartbeat.
    pub players: u32,
    /// Draining: it takes no new rooms and `/match` does not choose it.
    pub draining: bool,
    /// End of its lease, Redis clock, ms.
    pub lease_until_ms: u64,
    /// When its current registration began, Redis clock, ms.
    pub registered_ms: u64,
}

/// Who serves a room at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// The owner, under a live claim.
    Owned(&'a str),
    /// The node a matchmaker placed the room on; it claims the room when the first
    /// player arrives.
    Placed(&'a str),
}

impl<'a> Host<'a> {
    /// The node, either way.
    pub fn node(self) -> &'a str {
        match self {
            Host::Owned(n) | Host::Placed(n) => n,
        }
    }
}

/// A room the directory lists: claimed, placed, or waiting to be reopened (its owner's
/// lease lapsed; members and checkpoint are kept for the retention period).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomEntry {
    /// Room name.
    pub name: String,
    /// Fencing epoch of the room's latest claim (0: never claimed).
    pub epoch: u64,
    /// Node holding `epoch`, if it has not released it; its claim is live only until
    /// `lease_until_ms`.
    pub owner: Option<String>,
    /// End of the owner's lease, Redis clock, ms.
    pub lease_until_ms: u64,
    /// Node the room is placed on, if any; live only until `placed_until_ms`.
    pub placed_on: Option<String>,
    /// End of the placement, Redis clock, ms.
    pub placed_until_ms: u64,
    /// Player seats.
    pub capacity: u32,
    /// Accounts with a player in the room (including those within their resume grace).
    pub members: u32,
    /// Live seat reservations of accounts not yet in the room.
    pub reserved: u32,
    /// When its last checkpoint was written, Redis clock, ms (0: none).
    pub checkpoint_ms: u64,
}

impl RoomEntry {
    /// Who serves the room at `now_ms`, if anyone.
    pub fn host(&self, now_ms: u64) -> Option<Host<'_>> {
        match (&self.owner, &self.placed_on) {
            (Some(owner), _) if self.lease_until_ms > now_ms => Some(Host::Owned(owner)),
            (_, Some(node)) if self.placed_until_ms > now_ms => Some(Host::Placed(node)),
            _ => None,
        }
    }

    /// Seats taken: members plus reservations.
    pub fn taken(&self) -> u32 {
        self.members.saturating_add(self.reserved)
    }

    /// Seats free.
    pub fn free(&self) -> u32 {
        self.capacity.saturating_sub(self.taken())
    }
}

/// The room an account is in, or has a seat reserved in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountRoom {
    /// Room name.
    pub room: String,
    /// The account has a player in the room (not just a reservation): it resumes there.
    pub member: bool,
}

/// See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Snapshot {
    /// The Redis clock when the snapshot was taken, ms.
    pub now_ms: u64,
    /// Directory version: bumped by every claim, release, placement and reservation.
    pub version: u64,
    /// Where the account asked about is, if anywhere.
    pub account: Option<AccountRoom>,
    /// Live nodes, by id.
    pub nodes: Vec<NodeEntry>,
    /// Listed rooms, by name.
    pub rooms: Vec<RoomEntry>,
}

impl Snapshot {
    /// The node `id`, if live in this snapshot.
    pub fn node(&self, id: &str) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The room `name`, if listed.
    pub fn room(&self, name: &str) -> Option<&RoomEntry> {
        self.rooms.iter().find(|r| r.name == name)
    }

    /// Decodes the `snapshot` script's reply.
    pub(super) fn decode(mut r: Reply) -> Result<Snapshot, DirectoryError> {
        let now_ms = r.int()?;
        let version = r.int()?;
        let room = r.text()?;
        let member = r.flag()?;
        let account = (!room.is_empty()).then_some(AccountRoom { room, member });
        let node_count = r.int()?;
        let mut nodes = Vec::new();
        for _ in 0..node_count {
            nodes.push(NodeEntry {
                id: r.text()?,
                url: r.text()?,
                max_rooms: r.count()?,
                room_capacity: r.count()?,
                rooms: r.count()?,
                players: r.count()?,
                draining: r.flag()?,
                lease_until_ms: r.int()?,
                registered_ms: r.int()?,
            });
        }
        let room_count = r.int()?;
        let mut rooms = Vec::new();
        for _ in 0..room_count {
            rooms.push(RoomEntry {
                name: r.text()?,
                epoch: r.int()?,
                owner: Some(r.text()?).filter(|o| !o.is_empty()),
                lease_until_ms: r.int()?,
                placed_on: Some(r.text()?).filter(|o| !o.is_empty()),
                placed_until_ms: r.int()?,
                capacity: r.count()?,
                members: r.count()?,
                reserved: r.count()?,
                checkpoint_ms: r.int()?,
            });
        }
        if r.remaining() != 0 {
            return Err(r.unexpected("trailing fields"));
        }
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        rooms.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Snapshot {
            now_ms,
            version,
            account,
            nodes,
            rooms,
        })
    }
}

#[cfg(test)]
mod tests {
    use redis::Value;

    use super::*;

    fn s(v: &str) -> Value {
        Value::BulkString(v.as_bytes().to_vec())
    }

    #[test]
    fn decodes_the_snapshot_script_reply() {
        let reply = Value::Array(vec![
            Value::Int(1000),
            Value::Int(7),
            s("arena"),
            Value::Int(1),
            Value::Int(1),
            s("n1"),
            s("ws://a:1"),
            Value::Int(10),
            Value::Int(16),
            Value::Int(1),
            Value::Int(3),
            Value::Int(0),
            Value::Int(3000),
            Value::Int(10),
            Value::Int(1),
            s("arena"),
            Value::Int(4),
            s("n1"),
            Value::Int(2500),
            s(""),
            Value::Int(0),
            Value::Int(16),
            Value::Int(3),
            Value::Int(1),
            Value::Int(900),
        ]);
        let snap = Snapshot::decode(Reply::new("snapshot", reply).unwrap()).unwrap();
        assert_eq!(snap.now_ms, 1000);
        assert_eq!(
            snap.account,
            Some(AccountRoom {
                room: "arena".into(),
                member: true
            })
        );
        assert_eq!(snap.node("n1").unwrap().players, 3);
        let room = snap.room("arena").unwrap();
        assert_eq!(room.owner.as_deref(), Some("n1"));
        assert_eq!(room.placed_on, None);
        assert_eq!(room.taken(), 4);
        assert_eq!(room.free(), 12);
        assert_eq!(room.host(1000), Some(Host::Owned("n1")));
        assert_eq!(room.host(2500), None);
    }

    #[test]
    fn a_placement_serves_until_it_lapses_and_a_live_owner_comes_first() {
        let mut room = RoomEntry {
            name: "r".into(),
            epoch: 2,
            owner: Some("old".into()),
            lease_until_ms: 100,
            placed_on: Some("new".into()),
            placed_until_ms: 200,
            capacity: 4,
            members: 5,
            reserved: 0,
            checkpoint_ms: 0,
        };
        assert_eq!(room.host(50), Some(Host::Owned("old")));
        assert_eq!(room.host(150), Some(Host::Placed("new")));
        assert_eq!(room.host(200), None);
        assert_eq!(room.free(), 0, "an overfull count never underflows");
        room.owner = None;
        assert_eq!(room.host(50), Some(Host::Placed("new")));
    }
}
