//! Which partition a message goes to (design.md §4): `hash` is Kafka's murmur2 of the key bytes,
//! positive-masked, modulo the partition count — the partition the Java client's default
//! partitioner picks for the same key, so consumers and other producers agree; `table` hashes
//! `database.table` the same way; `one` is the configured partition.

use crate::project::Partitioning;

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), seed 0x9747b28c.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if let Some(&first) = tail.first() {
        h ^= u32::from(first);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The Java client's partition for a key: `toPositive(murmur2(key)) % partitions`.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

/// The partitioner of one table's messages on one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitioner {
    /// By the message key; a message without a key goes to `fallback` (the table's partition).
    Hash { partitions: i32, fallback: i32 },
    /// Every message of the table to one partition, chosen by the table's name.
    Table { partition: i32 },
    /// Every message to the configured partition.
    One { partition: i32 },
}

impl Partitioner {
    pub fn new(
        partitioning: Partitioning,
        database: &str,
        table: &str,
        partitions: i32,
        one_partition: i32,
    ) -> Self {
        let table_partition =
            partition_for_key(format!("{database}.{table}").as_bytes(), partitions);
        match partitioning {
            Partitioning::Hash => Partitioner::Hash {
                partitions,
                fallback: table_partition,
            },
            Partitioning::Table => Partitioner::Table {
                partition: table_partition,
            },
            Partitioning::One => Partitioner::One {
                partition: one_partition,
            },
        }
    }

    /// Partitions for a batch of message keys, appended to `out` (reused across batches).
    pub fn assign<'a>(&self, keys: impl Iterator<Item = Option<&'a [u8]>>, out: &mut Vec<i32>) {
        match *self {
            Partitioner::Hash {
                partitions,
                fallback,
            } => out.extend(keys.map(|key| match key {
                Some(key) => partition_for_key(key, partitions),
                None => fallback,
            })),
            Partitioner::Table { partition } | Partitioner::One { partition } => {
                out.extend(keys.map(|_| partition))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Partitions the Java client chose on a 3-partition topic (measured on Kafka 4.4, see
    /// shared/notes/services.md).
    #[test]
    fn hash_matches_the_java_client() {
        for (key, partition) in [
            ("k1", 2),
            ("k2", 0),
            ("k3", 1),
            ("a", 1),
            ("b", 2),
            ("c", 1),
        ] {
            assert_eq!(partition_for_key(key.as_bytes(), 3), partition, "key {key}");
        }
    }

    /// Reference values of Kafka's `Utils.murmur2` (from its unit tests' inputs).
    #[test]
    fn murmur2_covers_every_tail_length() {
        assert_eq!(murmur2(b"21"), -973_932_308);
        assert_eq!(murmur2(b"foobar"), -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985_981_536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58_897_971
        );
        assert_eq!(murmur2(b"abc"), 479_470_107);
    }

    #[test]
    fn table_and_one_send_every_message_to_one_partition() {
        let keys: Vec<Option<&[u8]>> = vec![Some(b"{\"id\":1}"), None, Some(b"{\"id\":2}")];
        let mut out = Vec::new();
        Partitioner::new(Partitioning::One, "shop", "orders", 3, 2)
            .assign(keys.iter().copied(), &mut out);
        assert_eq!(out, vec![2, 2, 2]);
        out.clear();
        let table = Partitioner::new(Partitioning::Table, "shop", "orders", 3, 0);
        table.assign(keys.iter().copied(), &mut out);
        let expected = partition_for_key(b"shop.orders", 3);
        assert_eq!(out, vec![expected; 3]);
        out.clear();
        Partitioner::new(Partitioning::Hash, "shop", "orders", 3, 0)
            .assign(keys.iter().copied(), &mut out);
        assert_eq!(
            out,
            vec![
                partition_for_key(b"{\"id\":1}", 3),
                expected,
                partition_for_key(b"{\"id\":2}", 3)
            ]
        );
    }
}
