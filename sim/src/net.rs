//! Messages between the world's hosts. turmoil's network carries an 8-byte message number
//! over UDP — so partitions, holds, latency and loss are turmoil's — while the message itself
//! waits in the world's [`Mailbox`] (all hosts run on one thread; nothing is serialized).
//! A message the network drops is never taken out of the mailbox, and nothing else happens.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use compactd::core::coord::{CoordId, CoordRequest, CoordResult};
use compactd::core::types::{JobId, RequestId, StoreRequest, StoreResult};
use compactd::tsdb::block_id::BlockId;

/// The port every host listens on.
pub const PORT: u16 = 9000;
/// The etcd host's name.
pub const ETCD: &str = "etcd";
/// The object store host's name.
pub const STORE: &str = "store";

/// A block's files as `(path inside the block, content)`.
pub type Files = Vec<(String, Vec<u8>)>;

/// What travels between hosts.
#[derive(Clone, Debug)]
pub enum Message {
    /// A node asks the store to perform a core request.
    Store {
        /// The sending node.
        from: String,
        /// The sending process (its start count): replies to an earlier process are dropped.
        process: u32,
        /// The core's request.
        req: StoreRequest,
        /// The files of an `UploadFiles`.
        files: Files,
        /// World time it was sent.
        sent_ms: i64,
    },
    /// A node downloads a job's input blocks.
    Download {
        /// The sending node.
        from: String,
        /// The sending process.
        process: u32,
        /// The job.
        job: JobId,
        /// The blocks to fetch.
        blocks: Vec<BlockId>,
        /// World time it was sent.
        sent_ms: i64,
    },
    /// The store answers a [`Message::Store`] of process `.0`.
    StoreReply(u32, RequestId, StoreResult),
    /// The store answers a [`Message::Download`] of process `.0`.
    DownloadReply(u32, JobId, Result<Vec<(BlockId, Files)>, String>),
    /// A node asks etcd.
    Coord {
        /// The sending node.
        from: String,
        /// The sending process.
        process: u32,
        /// The core's request.
        req: CoordRequest,
    },
    /// etcd answers a [`Message::Coord`] of process `.0`.
    CoordReply(u32, CoordId, CoordResult),
}

/// Messages in flight by number.
#[derive(Debug, Default)]
pub struct Mailbox {
    next: u64,
    messages: BTreeMap<u64, Message>,
}

impl Mailbox {
    /// Files `message` and returns the number to send over the network.
    pub fn post(&mut self, message: Message) -> u64 {
        self.next += 1;
        self.messages.insert(self.next, message);
        self.next
    }

    /// Takes the message with number `n` (once).
    pub fn take(&mut self, n: u64) -> Option<Message> {
        self.messages.remove(&n)
    }
}

/// The address every host binds.
pub fn bind_addr() -> (IpAddr, u16) {
    (IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT)
}

/// Encodes a message number for the wire.
pub fn encode(n: u64) -> [u8; 8] {
    n.to_le_bytes()
}

/// Decodes a message number; `None` for a datagram of the wrong size.
pub fn decode(buf: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(buf.try_into().ok()?))
}
