//! Declaring a table of settings once: each key's type, default, range and unit in one
//! line, from which [`settings!`](crate::settings) makes the serde struct, its `Default`
//! and its range checks.
//!
//! Must not hold rules between keys: those stay hand-written beside the table.

use super::check::{Check, Limits};

/// A number a settings table may hold, range-checked the way its type reads.
pub trait Setting: Copy {
    /// Checks `key` (holding `self`, as serde read it) against `limits`; whether it is
    /// valid or absent.
    fn check(self, c: &mut Check<'_>, key: &str, limits: Limits) -> bool;
}

impl Setting for f32 {
    fn check(self, c: &mut Check<'_>, key: &str, limits: Limits) -> bool {
        c.real(key, self, limits)
    }
}

macro_rules! whole_settings {
    ($($t:ty),*) => {$(
        impl Setting for $t {
            fn check(self, c: &mut Check<'_>, key: &str, limits: Limits) -> bool {
                c.whole(key, self, limits)
            }
        }
    )*};
}
whole_settings!(u8, u16, u32);

/// A table of settings: `key: type = default, min..=max "unit";` per number (ranges are
/// inclusive), `key: type = default;` for anything else. Makes the struct (serde, every
/// field defaulted: the calling crate depends on `serde` with `derive`), its `Default`,
/// and `fn check(&self, &mut Check)` over the ranges.
///
/// ```
/// rallypoint::settings! {
///     /// `[tag]` in `game.toml`.
///     pub struct Rules {
///         /// Top speed.
///         speed: f32 = 6.0, 0.5..=50.0 "units/s";
///         /// Players needed to start.
///         min_players: u16 = 2, 1..=64 "players";
///     }
/// }
/// assert_eq!(Rules::default().min_players, 2);
/// ```
#[macro_export]
macro_rules! settings {
    ($(#[$meta:meta])* pub struct $name:ident {
        $($(#[doc = $doc:literal])* $key:ident: $ty:ty = $default:expr
            $(, $min:literal ..= $max:tt $unit:literal)?;)*
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default)]
        pub struct $name {
            $($(#[doc = $doc])* pub $key: $ty,)*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $($key: $default,)* }
            }
        }

        impl $name {
            /// The range check of every number in the table.
            #[allow(unused_variables)] // a table with no ranged key
            pub fn check(&self, c: &mut $crate::assets::Check<'_>) {
                $($(
                    let limits = $crate::assets::Limits::new(f64::from($min), f64::from($max), $unit);
                    $crate::assets::Setting::check(self.$key, c, stringify!($key), limits);
                )?)*
            }
        }
    };
}
