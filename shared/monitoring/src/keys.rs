//! Storage keys of the monitoring context (docs/access-patterns.md lists them).

use linkcrm_storage::Key;

/// The due index is spread over this many partitions (by link id), so a platform's checks are
/// never one hot partition.
pub const DUE_SHARDS: u32 = 8;

/// A workspace's links, newest first: `LNK#<ws>` / `<lnk id>`.
pub fn links_pk(ws: &str) -> String {
    format!("LNK#{ws}")
}
pub fn link(ws: &str, id: &str) -> Key {
    Key::new(links_pk(ws), id)
}
/// GSI1: a workspace's links in one state.
pub fn state_pk(ws: &str, state: &str) -> String {
    format!("LNKST#{ws}#{state}")
}
/// GSI2: a relationship's links.
pub fn relationship_pk(ws: &str, rel: &str) -> String {
    format!("LNKREL#{ws}#{rel}")
}
/// GSI4: an agency's links across its workspaces.
pub fn agency_pk(agency: &str) -> String {
    format!("LNKAG#{agency}")
}
/// GSI3: links by the time their next check is due, in [`DUE_SHARDS`] partitions.
pub fn due_pk(shard: u32) -> String {
    format!("LNKDUE#{shard}")
}
pub fn due_shard(link: &str) -> u32 {
    due_shard_hash(link) % DUE_SHARDS
}
/// FNV-1a of a link id: stable across processes and releases (the shard is stored in the key).
pub fn due_shard_hash(link: &str) -> u32 {
    link.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ b as u32).wrapping_mul(0x0100_0193))
}
pub fn due_sort(at: &str, link: &str) -> String {
    format!("{at}#{link}")
}
/// A link's checks, oldest first: `LCHK#<lnk id>` / `<lchk id>`.
pub fn checks_pk(link: &str) -> String {
    format!("LCHK#{link}")
}
pub fn check(link: &str, id: &str) -> Key {
    Key::new(checks_pk(link), id)
}
/// GSI1 of the checks that changed a link's state: a workspace's changes by time (the summary's
/// window).
pub fn changes_pk(ws: &str) -> String {
    format!("LNKCHG#{ws}")
}
/// A workspace's counts of links by state.
pub fn summary(ws: &str) -> Key {
    Key::new(format!("LNKSUM#{ws}"), "#")
}
/// A workspace's checks in a calendar month (UTC), against its free allowance.
pub fn quota(ws: &str, month: &str) -> Key {
    Key::new(format!("LNKQ#{ws}"), month)
}

#[cfg(test)]
mod tests {
    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(
            super::due_shard("lnk_01JD3M0X2Z6Q8R4T5V7W9Y0A1B"),
            super::due_shard("lnk_01JD3M0X2Z6Q8R4T5V7W9Y0A1B")
        );
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..200 {
            seen.insert(super::due_shard(&format!("lnk_{i:026}")));
        }
        assert_eq!(seen.len(), super::DUE_SHARDS as usize);
    }
}
