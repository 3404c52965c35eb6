//! What a player asks for in one step, and the one place untrusted numbers are made safe.
//!
//! Must not reject or panic: the network layer already refuses NaN and infinities, but
//! the simulation is the last line and treats anything non-finite as "no input".

use std::f64::consts::{PI, TAU};

/// One player's controls for one step.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Control {
    /// Desired move direction, x. `(mx, my)` is clamped to length 1; non-finite is 0.
    pub mx: f32,
    /// Desired move direction, y (downwards).
    pub my: f32,
    /// Aim angle in radians, 0 = +x, growing towards +y. Non-finite keeps the last aim.
    pub aim: f32,
    /// Trigger held.
    pub fire: bool,
    /// The tick of the world the player was looking at: a shot is judged against the
    /// world as it was then, within the lag-compensation window (a claim older than the
    /// window counts as its oldest tick, a newer one as the present). `None`: the present.
    #[serde(default)]
    pub view: Option<u32>,
}

/// A [`Control`] that is safe to simulate: finite, move clamped to the unit disc, aim
/// wrapped into `[-π, π)` or absent. `view` passes unchanged: any tick is harmless, the
/// shot's rewind is bounded where it is used.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct SafeControl {
    pub(crate) mx: f64,
    pub(crate) my: f64,
    pub(crate) aim: Option<f32>,
    pub(crate) fire: bool,
    #[serde(default)]
    pub(crate) view: Option<u32>,
}

impl Control {
    pub(crate) fn sanitized(&self) -> SafeControl {
        let finite_or_zero = |v: f32| if v.is_finite() { f64::from(v) } else { 0.0 };
        let (mut mx, mut my) = (finite_or_zero(self.mx), finite_or_zero(self.my));
        // f64: squaring an f32 up to f32::MAX cannot overflow here, so a huge input keeps
        // its direction instead of collapsing to 0/inf.
        let length = mx.hypot(my);
        if length > 1.0 {
            mx /= length;
            my /= length;
        }
        let aim = self
            .aim
            .is_finite()
            .then(|| wrap_angle(f64::from(self.aim)) as f32);
        SafeControl {
            mx,
            my,
            aim,
            fire: self.fire,
            view: self.view,
        }
    }
}

/// Wraps into `[-π, π)` so snapshot values stay small whatever a client sends.
fn wrap_angle(a: f64) -> f64 {
    (a + PI).rem_euclid(TAU) - PI
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_numbers_become_harmless() {
        let c = Control {
            mx: f32::NAN,
            my: f32::INFINITY,
            aim: f32::NEG_INFINITY,
            fire: true,
            view: None,
        }
        .sanitized();
        assert_eq!((c.mx, c.my, c.aim, c.fire), (0.0, 0.0, None, true));

        let c = Control {
            mx: f32::MAX,
            my: -f32::MAX,
            aim: 1e30,
            fire: false,
            view: None,
        }
        .sanitized();
        let half = std::f64::consts::FRAC_1_SQRT_2;
        assert!((c.mx - half).abs() < 1e-9 && (c.my + half).abs() < 1e-9);
        let aim = c.aim.unwrap();
        assert!(aim.is_finite() && (-4.0..4.0).contains(&aim));

        let c = Control {
            mx: 0.3,
            my: 0.4,
            aim: 7.0,
            fire: false,
            view: None,
        }
        .sanitized();
        assert!((c.mx - 0.3).abs() < 1e-7 && (c.my - 0.4).abs() < 1e-7);
        assert!((f64::from(c.aim.unwrap()) - (7.0 - TAU)).abs() < 1e-6);
    }
}
