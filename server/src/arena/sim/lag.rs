//! Lag compensation: where every player was over the last few ticks, so that a shot is
//! judged against the world its shooter was looking at.
//!
//! A client draws other players in the past (the snapshot's travel time plus its
//! interpolation delay), so a shot aimed at where a target is drawn misses where the
//! target is. The shooter says which tick it was drawing (`Control::view`); the shot is
//! rewound that far, bounded by the tuning's window and by the recorded past, and its
//! projectile is fast-forwarded: it flies one step per rewound tick, each against the
//! players as they were at that tick, walls included, before it joins the present. A
//! player hit there takes the hit now, if it is still alive and present (one that has
//! died or left since cannot be hit twice; one that respawned since has no past before
//! its respawn). With no view, or a window of 0, a shot flies from the present exactly
//! as it always has.
//!
//! The history is state (hashed, checkpointed): one frame per tick of the current round,
//! at most the window's ticks, reused in place. Must not move players, and must not
//! touch anything but the shot being resolved and the player it hits.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use slotmap::{Key, SlotMap};

use super::hash::StateHasher;
use super::world::{Player, PlayerKey};
use crate::arena::assets::MAX_LAG_COMPENSATION_S;

/// The players that could be hit at one tick, where they were.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Frame {
    pub(super) tick: u32,
    pub(super) bodies: Vec<Spot>,
}

/// A tangible player's centre at a frame's tick.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(super) struct Spot {
    pub(super) key: PlayerKey,
    pub(super) x: f32,
    pub(super) y: f32,
}

/// The recent past, oldest frame first; the newest frame is the current tick.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct History {
    frames: VecDeque<Frame>,
}

impl History {
    /// Adds the frame of `tick` (the players as they stand now), keeping the newest
    /// `keep` frames. Reuses the oldest frame's buffer once the history is full.
    pub(super) fn record(&mut self, tick: u32, players: &SlotMap<PlayerKey, Player>, keep: usize) {
        if keep == 0 {
            self.frames.clear();
            return;
        }
        while self.frames.len() > keep {
            self.frames.pop_front();
        }
        let mut frame = if self.frames.len() == keep {
            self.frames.pop_front().unwrap_or_default()
        } else {
            Frame::default()
        };
        frame.tick = tick;
        frame.bodies.clear();
        frame.bodies.extend(
            players
                .iter()
                .filter(|(_, p)| p.is_tangible())
                .map(|(key, p)| Spot {
                    key,
                    x: p.x,
                    y: p.y,
                }),
        );
        self.frames.push_back(frame);
    }

    /// Forgets everything (a new round: everyone is somewhere else).
    pub(super) fn clear(&mut self) {
        self.frames.clear();
    }

    /// Forgets one player's past (it respawned: its earlier positions are another life).
    pub(super) fn forget(&mut self, key: PlayerKey) {
        for frame in &mut self.frames {
            frame.bodies.retain(|s| s.key != key);
        }
    }

    /// Frames recorded (consecutive ticks, the newest being the current tick).
    pub(super) fn len(&self) -> usize {
        self.frames.len()
    }

    /// The frame of `tick`, if it is recorded.
    pub(super) fn at(&self, tick: u32) -> Option<&Frame> {
        let newest = self.frames.back()?.tick;
        let back = newest.wrapping_sub(tick) as usize;
        let index = self.frames.len().checked_sub(1 + back)?;
        self.frames.get(index).filter(|f| f.tick == tick)
    }

    pub(super) fn hash_into(&self, h: &mut StateHasher) {
        h.usize(self.frames.len());
        for frame in &self.frames {
            h.u32(frame.tick);
            h.usize(frame.bodies.len());
            for s in &frame.bodies {
                h.u32(s.key.data().as_ffi() as u32);
                h.f32(s.x);
                h.f32(s.y);
            }
        }
    }
}

/// Ticks of the past a window of `seconds` covers at steps of `dt` (whole ticks, never
/// more than [`MAX_LAG_COMPENSATION_S`] allows).
pub(super) fn window_ticks(seconds: f32, dt: f64) -> usize {
    if dt <= 0.0 || !seconds.is_finite() {
        return 0;
    }
    let seconds = f64::from(seconds.clamp(0.0, MAX_LAG_COMPENSATION_S));
    // The slack keeps 0.3 s at 30 Hz (8.9999997 steps of an f32 1/30) at 9 ticks.
    (seconds / dt + 1e-4).floor() as usize
}

/// How many ticks a shot fired at `tick` by a player looking at `view` is rewound: how
/// far behind the present its view was, at most `window` ticks and the `recorded` past.
/// A view from the future (or none) is the present.
pub(super) fn rewind(tick: u32, view: Option<u32>, window: usize, recorded: usize) -> usize {
    let Some(view) = view else {
        return 0;
    };
    let behind = tick.wrapping_sub(view);
    if behind > u32::MAX / 2 {
        return 0;
    }
    (behind as usize).min(window).min(recorded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_whole_ticks_within_the_cap() {
        let dt = f64::from(1.0f32 / 30.0);
        assert_eq!(window_ticks(0.3, dt), 9);
        assert_eq!(window_ticks(0.25, dt), 7);
        assert_eq!(window_ticks(0.0, dt), 0);
        assert_eq!(window_ticks(0.5, f64::from(1.0f32 / 120.0)), 60);
        assert_eq!(window_ticks(30.0, dt), 15, "capped at 0.5 s");
        assert_eq!(window_ticks(f32::NAN, dt), 0);
        assert_eq!(window_ticks(0.3, 0.0), 0);
    }

    #[test]
    fn rewinds_stay_within_the_window_and_the_past() {
        assert_eq!(rewind(100, None, 9, 9), 0);
        assert_eq!(rewind(100, Some(95), 9, 9), 5);
        assert_eq!(rewind(100, Some(50), 9, 9), 9);
        assert_eq!(rewind(100, Some(95), 9, 3), 3);
        assert_eq!(rewind(100, Some(100), 9, 9), 0);
        assert_eq!(rewind(100, Some(101), 9, 9), 0, "the future");
        assert_eq!(rewind(2, Some(u32::MAX), 9, 9), 3, "across the wrap");
    }
}
