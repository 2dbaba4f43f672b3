//! Client sessions of `/groups/{group}/mcp` that this data plane moved to
//! another member (session recovery): the client keeps its session id, and
//! this map says where the session lives now, or that the client ended it
//! (so it is not re-opened). Each data plane keeps its own; one that has not
//! moved a session re-opens it itself, from the `initialize` params the id
//! carries. Bounded: the least recently used entries go first, and a
//! session forgotten here is simply re-opened again.

use std::num::NonZeroUsize;

use lru::LruCache;
use parking_lot::Mutex;

/// Sessions remembered at most; an entry is a few hundred bytes.
const CAPACITY: NonZeroUsize = NonZeroUsize::new(10_000).expect("non-zero");

/// Where a moved session lives now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// The member that holds it.
    pub member: String,
    /// That member's session id (empty for a member without sessions).
    pub member_session: Vec<u8>,
}

/// What this data plane knows of a client's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    /// It was moved to another member.
    Moved(Moved),
    /// The client ended it (DELETE): it is not re-opened.
    Ended,
}

/// The moved and ended sessions of this data plane, by the client's session id.
#[derive(Debug)]
pub struct MovedSessions {
    moved: Mutex<LruCache<Vec<u8>, Known>>,
}

impl Default for MovedSessions {
    fn default() -> Self {
        Self {
            moved: Mutex::new(LruCache::new(CAPACITY)),
        }
    }
}

impl MovedSessions {
    /// What this data plane knows of the client's session, if anything.
    pub fn get(&self, client_session: &[u8]) -> Option<Known> {
        self.moved.lock().get(client_session).cloned()
    }

    /// Remembers that the client's session now lives at `moved`.
    pub fn insert(&self, client_session: &[u8], moved: Moved) {
        self.moved
            .lock()
            .put(client_session.to_vec(), Known::Moved(moved));
    }

    /// Remembers that the client ended its session.
    pub fn end(&self, client_session: &[u8]) {
        self.moved.lock().put(client_session.to_vec(), Known::Ended);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_moves_and_forgets_ended_sessions() {
        let sessions = MovedSessions::default();
        let moved = Moved {
            member: "b".into(),
            member_session: b"s2".to_vec(),
        };
        assert_eq!(sessions.get(b"client"), None);
        sessions.insert(b"client", moved.clone());
        assert_eq!(sessions.get(b"client"), Some(Known::Moved(moved)));
        sessions.end(b"client");
        assert_eq!(sessions.get(b"client"), Some(Known::Ended));
    }
}
