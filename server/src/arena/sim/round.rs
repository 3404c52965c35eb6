//! The round cycle: play until the score or time limit, announce the result, freeze for
//! the intermission, then start the next round (queued map, zero scores, everyone
//! respawned).
//!
//! Round clocks count simulated seconds; ticks only appear in events, predicted from the
//! current `dt` with the same slack the clocks use, so with a fixed `dt` the announced
//! tick is exactly the tick it happens. Must not move players or fire weapons itself.

use rallypoint_protocol::message::Event;

use super::hash::StateHasher;
use super::world::World;
use crate::arena::assets::RoundTuning;

/// Tolerance for "this timer has run out". Far below a tick, far above the rounding a
/// clock picks up from subtracting an f32 `dt` (which 1/30 is not exactly) a few
/// thousand times, so a 3 s timer at 30 Hz ends after exactly 90 steps.
pub(super) const TIMER_SLACK_S: f64 = 1e-4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) enum Phase {
    /// Before the first step: round 1 exists but has not started.
    Pending,
    Playing,
    Intermission,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct Round {
    pub(super) number: u32,
    pub(super) phase: Phase,
    /// Fixed at round start: clients were told it in `RoundStart`.
    pub(super) score_limit: u32,
    pub(super) time_left_s: f64,
    pub(super) end_tick: u32,
    pub(super) intermission_left_s: f64,
    pub(super) next_tick: u32,
}

impl Round {
    pub(super) fn pending(tuning: &RoundTuning) -> Self {
        Round {
            number: 1,
            phase: Phase::Pending,
            score_limit: tuning.score_limit,
            time_left_s: f64::from(tuning.time_limit_s),
            end_tick: 0,
            intermission_left_s: 0.0,
            next_tick: 0,
        }
    }

    pub(super) fn hash_into(&self, h: &mut StateHasher) {
        h.u32(self.number);
        h.u8(self.phase as u8);
        h.u32(self.score_limit);
        h.f64(self.time_left_s);
        h.u32(self.end_tick);
        h.f64(self.intermission_left_s);
        h.u32(self.next_tick);
    }
}

/// Steps needed for a clock of `seconds` to run out when each step takes `dt` seconds,
/// matching the `<= TIMER_SLACK_S` test the clocks use.
pub(super) fn steps_until(seconds: f64, dt: f64) -> u32 {
    if seconds <= TIMER_SLACK_S {
        0
    } else if dt <= 0.0 {
        u32::MAX
    } else {
        // `as` saturates: an absurdly long clock becomes u32::MAX, not a panic.
        ((seconds - TIMER_SLACK_S) / dt).ceil() as u32
    }
}

impl World {
    /// Starts the pending first round, or the next one once the intermission is over.
    /// Called at the top of a step, before anything moves.
    pub(super) fn begin_round(&mut self, dt: f64) {
        if self.round.phase != Phase::Pending {
            self.round.number = self.round.number.saturating_add(1);
            if let Some(map) = self.next_map.take() {
                self.install_map(map);
                self.events.push(Event::Map(self.map_info()));
            }
            self.respawn_everyone();
            self.history.clear();
            for pickup in self.pickups.values_mut() {
                pickup.available = true;
                pickup.respawn_in_s = 0.0;
            }
        }
        let tuning = &self.tuning.round;
        self.round.phase = Phase::Playing;
        self.round.score_limit = tuning.score_limit;
        self.round.time_left_s = f64::from(tuning.time_limit_s);
        self.round.end_tick = self
            .tick
            .saturating_add(steps_until(self.round.time_left_s, dt));
        self.events.push(self.round_start_event());
    }

    /// Everyone back at a spawn point with full health and no score, placed one at a time
    /// so each counts as occupying its spawn for the next.
    fn respawn_everyone(&mut self) {
        let mut keys = std::mem::take(&mut self.scratch_keys);
        keys.clear();
        keys.extend(self.players.keys());
        for p in self.players.values_mut() {
            p.alive = false;
            p.score = 0;
        }
        for &key in &keys {
            self.respawn(key);
        }
        self.scratch_keys = keys;
    }

    /// Ends the round if a player reached the score limit or the clock ran out. Called at
    /// the end of a playing step, when the tick about to be reached is `tick + 1`.
    pub(super) fn end_round_if_over(&mut self, dt: f64) {
        let limit = i64::from(self.round.score_limit);
        let by_score = self.players.values().any(|p| i64::from(p.score) >= limit);
        if !by_score && self.round.time_left_s > TIMER_SLACK_S {
            return;
        }
        let mut scores: Vec<(u32, i32)> =
            self.players.values().map(|p| (p.id.0, p.score)).collect();
        scores.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let winner = match scores.as_slice() {
            [] => None,
            [only] => Some(only.0),
            [first, second, ..] => (first.1 > second.1).then_some(first.0),
        };

        let ids = &mut self.ids;
        for projectile in self.projectiles.values() {
            ids.release(projectile.id);
        }
        self.projectiles.clear();
        for p in self.players.values_mut() {
            p.vx = 0.0;
            p.vy = 0.0;
        }

        let now = self.tick.wrapping_add(1);
        self.round.phase = Phase::Intermission;
        self.round.intermission_left_s = f64::from(self.tuning.round.intermission_s);
        self.round.next_tick = now.saturating_add(steps_until(self.round.intermission_left_s, dt));
        self.events.push(Event::RoundEnd {
            round: self.round.number,
            winner,
            scores,
            next_tick: self.round.next_tick,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::steps_until;

    #[test]
    fn steps_until_matches_common_tick_rates() {
        for rate in [10u32, 20, 30, 60, 90, 120] {
            let dt = f64::from(1.0f32 / rate as f32);
            assert_eq!(steps_until(180.0, dt), 180 * rate, "rate {rate}");
            assert_eq!(steps_until(3.0, dt), 3 * rate, "rate {rate}");
        }
        assert_eq!(steps_until(0.0, 1.0 / 30.0), 0);
        assert_eq!(steps_until(5.0, 0.0), u32::MAX);
        assert_eq!(steps_until(1e30, 1e-30), u32::MAX);
    }
}
