//! The job's memory budget: what its memory levels are shares of.
//!
//! The budget is, in this order, the job's own limit (`--memory-max`, `limits.memory_max`),
//! else the tightest limit on the cgroups above the job (a slice's `MemoryMax=` or
//! `MemoryHigh=`, a container's limit), else what the host has available when the job starts
//! less a reserve kept for everything else. The levels are percentages of it unless a
//! configuration gives them in bytes. Pure: the caller reads the facts.

use std::fmt;

use serde::Serialize;

use crate::units::format_size;

/// The smallest reserve kept for the rest of the host when the budget is the host's memory.
pub const MIN_HOST_RESERVE: u64 = 256 * 1024 * 1024;
/// The largest reserve: past this, a tenth of a big host's memory is more than its system
/// services need.
pub const MAX_HOST_RESERVE: u64 = 4 * 1024 * 1024 * 1024;
/// The share of the host's memory (`MemTotal`) kept back for the rest of the host, percent:
/// what earlyoom's default (act at 10 % available) keeps free.
pub const HOST_RESERVE_PERCENT: u64 = 10;

/// Where the budget came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum BudgetSource {
    /// The job's own `memory.max` (`--memory-max` or `limits.memory_max`), the tighter of it
    /// and any limit above.
    OwnLimit,
    /// The tightest `memory.max`/`memory.high` (v1: `memory.limit_in_bytes`) on the cgroups
    /// above the job.
    EnclosingLimit,
    /// The host's memory available at start (`MemAvailable`) less a reserve.
    Host {
        /// `MemAvailable` when the job started, bytes.
        available: u64,
        /// What is kept back for the rest of the host, bytes.
        reserve: u64,
    },
}

/// The job's memory budget and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Budget {
    /// Bytes.
    pub bytes: u64,
    /// Where it came from.
    pub source: BudgetSource,
}

impl Budget {
    /// The budget of a job whose own limit is `own_max`, under an `enclosing` limit, on a
    /// host with `memory_total` and `memory_available` bytes (`/proc/meminfo`).
    pub fn resolve(
        own_max: Option<u64>,
        enclosing: Option<u64>,
        memory_total: u64,
        memory_available: u64,
    ) -> Budget {
        match (own_max, enclosing) {
            (Some(own), Some(above)) if above < own => Budget {
                bytes: above,
                source: BudgetSource::EnclosingLimit,
            },
            (Some(own), _) => Budget {
                bytes: own,
                source: BudgetSource::OwnLimit,
            },
            (None, Some(above)) => Budget {
                bytes: above,
                source: BudgetSource::EnclosingLimit,
            },
            (None, None) => {
                let reserve = host_reserve(memory_total);
                Budget {
                    bytes: memory_available.saturating_sub(reserve),
                    source: BudgetSource::Host {
                        available: memory_available,
                        reserve,
                    },
                }
            }
        }
    }

    /// The budget when it is not a cgroup limit (the host's), else `None`: what levels
    /// given as percentages are taken of while the job's cgroup has no limit.
    pub fn without_limit(&self) -> Option<u64> {
        matches!(self.source, BudgetSource::Host { .. }).then_some(self.bytes)
    }
}

/// What is kept back for the rest of a host with `memory_total` bytes: a tenth of it, at
/// least [`MIN_HOST_RESERVE`] and at most [`MAX_HOST_RESERVE`].
pub fn host_reserve(memory_total: u64) -> u64 {
    (memory_total / 100 * HOST_RESERVE_PERCENT).clamp(MIN_HOST_RESERVE, MAX_HOST_RESERVE)
}

impl fmt::Display for BudgetSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BudgetSource::OwnLimit => f.write_str("the job's own memory limit"),
            BudgetSource::EnclosingLimit => {
                f.write_str("the tightest limit above the job's cgroup")
            }
            BudgetSource::Host { available, reserve } => write!(
                f,
                "the host's {} available at start less a {} reserve",
                format_size(*available),
                format_size(*reserve)
            ),
        }
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", format_size(self.bytes), self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;
    const GIB: u64 = 1024 * MIB;

    #[test]
    fn the_own_limit_wins_unless_a_limit_above_is_tighter() {
        let own = Budget::resolve(Some(300 * MIB), Some(GIB), 24 * GIB, 20 * GIB);
        assert_eq!((own.bytes, own.source), (300 * MIB, BudgetSource::OwnLimit));
        let above = Budget::resolve(Some(GIB), Some(300 * MIB), 24 * GIB, 20 * GIB);
        assert_eq!(
            (above.bytes, above.source),
            (300 * MIB, BudgetSource::EnclosingLimit)
        );
        let only_above = Budget::resolve(None, Some(2 * GIB), 24 * GIB, 20 * GIB);
        assert_eq!(only_above.bytes, 2 * GIB);
        assert_eq!(only_above.without_limit(), None);
    }

    #[test]
    fn without_any_limit_the_budget_is_the_available_memory_less_a_reserve() {
        let host = Budget::resolve(None, None, 24 * GIB, 22 * GIB);
        let reserve = 24 * GIB / 100 * 10;
        assert_eq!(host.bytes, 22 * GIB - reserve);
        assert_eq!(
            host.source,
            BudgetSource::Host {
                available: 22 * GIB,
                reserve
            }
        );
        assert_eq!(host.without_limit(), Some(host.bytes));
        // A small host keeps at least the minimum reserve, a big one at most the maximum.
        assert_eq!(host_reserve(GIB), MIN_HOST_RESERVE);
        assert_eq!(host_reserve(512 * GIB), MAX_HOST_RESERVE);
        // A host with less available than the reserve has no budget left, not a wrapped one.
        assert_eq!(Budget::resolve(None, None, GIB, 100 * MIB).bytes, 0);
    }

    #[test]
    fn the_source_is_said_in_words() {
        let host = Budget::resolve(None, None, 24 * GIB, 22 * GIB);
        assert_eq!(
            host.to_string(),
            "19.6G: the host's 22G available at start less a 2.4G reserve"
        );
    }
}
