//! corral's API key store.
//!
//! Keys look like `crl_<id>_<secret>`: a 12-character public id used for lookup and a
//! 43-character secret (256 bits from the OS RNG). Only `sha256(secret)` is stored, in a SQLite
//! database (`keys.db`, mode 0600) inside the data directory. The gate authenticates against an
//! in-memory [`KeySnapshot`] and reloads it when [`KeyStore::data_version`] changes, i.e. when
//! another connection (such as `corral keys`) committed a change, and reopens the file when
//! [`KeyStore::file_state`] shows the path names another file (or none) than the one it opened.
//!
//! Changes that hand out a secret can be staged ([`KeyStore::begin_create`],
//! [`KeyStore::begin_rotate`]) and committed only once the secret has reached its holder.
//!
//! The gate also saves its per-key allowance state here ([`KeyStore::save_allowances`], read
//! back at start with [`KeyStore::allowances`]), so that a restart does not refill every token
//! quota. Schema version 2 added that table; a store of version 1 is upgraded when opened.
//!
//! File permissions: a new data directory is created with mode 0700 and `keys.db` is created with
//! mode 0600 before SQLite opens it. An existing `keys.db` readable or writable by group or others
//! is tightened to 0600 on open (it holds only hashes, but names and policies are still nobody
//! else's business). An existing data directory is left as the operator made it;
//! [`KeyStore::loose_dir_mode`] tells when it is open to group or others, for a warning.

mod allowance;
mod error;
mod key;
mod snapshot;
mod store;

pub use allowance::{LoadedAllowances, SavedAllowance};
pub use error::StoreError;
pub use key::{
    shown_arg, valid_name as is_valid_name, Secret, ID_LEN, KEY_LEN, KEY_PREFIX, SECRET_LEN,
};
pub use snapshot::{AuthError, KeyEntry, KeySnapshot};
pub use store::{
    FileState, KeyInfo, KeyState, KeyStore, PendingKey, DB_FILE, MIN_LIFETIME, SCHEMA_VERSION,
};
