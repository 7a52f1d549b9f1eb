//! Whether a restore's archive may be extracted onto a disk: checked once before the
//! archive is read (against the least it will take there) and again while it is extracted
//! (free space must not fall under a reserve), so that a disk without room refuses the
//! restore early with the numbers and the fix, instead of failing halfway or filling the
//! host's disk (issue 11, item 6).

/// Bytes that must stay free on the extraction disk: the rest of the host (or the node
/// the server runs on) needs some.
pub const RESERVE: u64 = 64 << 20;

/// How often extraction looks at free space again: after this many bytes written (counted
/// as [`on_disk`]), not per entry.
pub const CHECK_EVERY: u64 = 8 << 20;

/// The block files are counted in: a file takes at least one on most filesystems.
pub const BLOCK: u64 = 4096;

/// The least disk an archive of `compressed` bytes (gzip'd tar, as stored) takes once
/// extracted, never more than the extraction's total budget `max_total` (larger archives
/// are refused by that budget as they are extracted).
///
/// The compressed size itself: gzip never makes Kubernetes JSON larger, and each extracted
/// file takes whole blocks besides. Most archives take several times more, but not all:
/// Helm's release Secrets (base64 of base64 of gzip'd data, often most of a backup) expand
/// under 2×; a larger factor would refuse restores that fit. What this estimate misses is
/// caught while extracting ([`check`] against [`RESERVE`] every [`CHECK_EVERY`] bytes).
pub fn least_needed(compressed: u64, max_total: u64) -> u64 {
    compressed.min(max_total)
}

/// The disk a file of `size` bytes takes, counted in whole [`BLOCK`]s (at least one).
pub fn on_disk(size: u64) -> u64 {
    size.div_ceil(BLOCK).max(1).saturating_mul(BLOCK)
}

/// Too little free space: `free` bytes are free, `needed` (what is still to be written plus
/// the reserve) are needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortfall {
    /// Bytes free (available to this user).
    pub free: u64,
    /// Bytes needed: `needed` plus `reserve` of [`check`].
    pub needed: u64,
}

/// Whether `free` bytes leave room for `needed` more and still `reserve` free. Before an
/// extraction `needed` is [`least_needed`]; during it `0` (only the reserve is kept).
pub fn check(free: u64, needed: u64, reserve: u64) -> Result<(), Shortfall> {
    let needed = needed.saturating_add(reserve);
    if free >= needed {
        Ok(())
    } else {
        Err(Shortfall { free, needed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const MIB: u64 = 1 << 20;

    #[rstest]
    #[case::plenty(10 << 30, 100 * MIB, RESERVE, Ok(()))]
    #[case::exactly_enough(164 * MIB, 100 * MIB, RESERVE, Ok(()))]
    #[case::one_byte_short(164 * MIB - 1, 100 * MIB, RESERVE, Err(Shortfall { free: 164 * MIB - 1, needed: 164 * MIB }))]
    #[case::room_for_the_archive_but_not_the_reserve(120 * MIB, 100 * MIB, RESERVE, Err(Shortfall { free: 120 * MIB, needed: 164 * MIB }))]
    #[case::full_disk(0, 1, RESERVE, Err(Shortfall { free: 0, needed: RESERVE + 1 }))]
    #[case::during_extraction_above_the_reserve(RESERVE, 0, RESERVE, Ok(()))]
    #[case::during_extraction_under_the_reserve(RESERVE - 1, 0, RESERVE, Err(Shortfall { free: RESERVE - 1, needed: RESERVE }))]
    #[case::no_reserve(5, 5, 0, Ok(()))]
    #[case::needs_overflowing_saturate(u64::MAX, u64::MAX, RESERVE, Ok(()))]
    #[case::needs_overflowing_refused_below(u64::MAX - 1, u64::MAX, 1, Err(Shortfall { free: u64::MAX - 1, needed: u64::MAX }))]
    fn room_is_checked(
        #[case] free: u64,
        #[case] needed: u64,
        #[case] reserve: u64,
        #[case] want: Result<(), Shortfall>,
    ) {
        assert_eq!(check(free, needed, reserve), want);
    }

    #[rstest]
    #[case::small_archive(5 * MIB, 64 << 30, 5 * MIB)]
    #[case::archive_over_the_budget(100 << 30, 64 << 30, 64 << 30)]
    #[case::empty(0, 64 << 30, 0)]
    fn least_needed_is_the_compressed_size_within_the_budget(
        #[case] compressed: u64,
        #[case] max_total: u64,
        #[case] want: u64,
    ) {
        assert_eq!(least_needed(compressed, max_total), want);
    }

    #[rstest]
    #[case::empty_file(0, BLOCK)]
    #[case::one_byte(1, BLOCK)]
    #[case::one_block(BLOCK, BLOCK)]
    #[case::one_byte_over(BLOCK + 1, 2 * BLOCK)]
    #[case::huge_saturates(u64::MAX, u64::MAX)]
    fn files_are_counted_in_blocks(#[case] size: u64, #[case] want: u64) {
        assert_eq!(on_disk(size), want);
    }
}
