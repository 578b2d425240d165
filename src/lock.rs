//! The one way this crate takes a mutex: a poisoned lock still guards valid data here
//! (every mutex holds plain values with no invariant a panic could break halfway), so a
//! panic elsewhere never turns into a second one.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Lock `m`, poisoned or not.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
