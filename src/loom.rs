//! The synchronisation primitives the broadcast ring is built on, swapped
//! for [loom]'s in the ring's concurrency models (tokio's `loom` shim).
//!
//! In every normal build these are the standard library's types (and
//! `atomic-waker`'s `AtomicWaker`), with no cost. Under `cfg(all(test,
//! loom))` (see `.ci/run`) they are loom's, so loom can explore every
//! interleaving of the ring's atomics, lock, wakers and slot cells, and
//! check each slot access against the happens-before order it computes.
//! Only what the ring uses is swapped; the rest of the crate keeps std.
//!
//! [loom]: https://docs.rs/loom

#[cfg(not(all(test, loom)))]
mod imp {
    pub(crate) mod sync {
        pub(crate) use std::sync::{Mutex, MutexGuard};

        pub(crate) use crate::sync::lock;

        pub(crate) mod atomic {
            pub(crate) use std::sync::atomic::{
                AtomicBool, AtomicU64, AtomicUsize, Ordering, fence,
            };
        }
    }

    pub(crate) mod cell {
        /// `std::cell::UnsafeCell` with loom's closure-based access API.
        #[derive(Debug)]
        pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

        impl<T> UnsafeCell<T> {
            pub(crate) const fn new(value: T) -> Self {
                Self(std::cell::UnsafeCell::new(value))
            }

            /// Calls `f` with a pointer for reading the value.
            #[inline(always)]
            pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
                f(self.0.get())
            }

            /// Calls `f` with a pointer for writing the value.
            #[inline(always)]
            pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
                f(self.0.get())
            }
        }
    }

    pub(crate) mod future {
        pub(crate) use atomic_waker::AtomicWaker;
    }
}

#[cfg(all(test, loom))]
mod imp {
    pub(crate) mod sync {
        use std::sync::PoisonError;

        pub(crate) use ::loom::sync::{Mutex, MutexGuard};

        /// Locks `mutex`, recovering it if a holder panicked (as
        /// [`crate::sync::lock`]).
        pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
            mutex.lock().unwrap_or_else(PoisonError::into_inner)
        }

        pub(crate) mod atomic {
            pub(crate) use ::loom::sync::atomic::{
                AtomicBool, AtomicU64, AtomicUsize, Ordering, fence,
            };
        }
    }

    pub(crate) use ::loom::cell;

    pub(crate) mod future {
        use std::task::Waker;

        /// loom's `AtomicWaker` with `atomic-waker`'s by-reference API.
        #[derive(Debug)]
        pub(crate) struct AtomicWaker(::loom::future::AtomicWaker);

        impl AtomicWaker {
            pub(crate) fn new() -> Self {
                Self(::loom::future::AtomicWaker::new())
            }

            pub(crate) fn register(&self, waker: &Waker) {
                self.0.register_by_ref(waker);
            }

            pub(crate) fn wake(&self) {
                self.0.wake();
            }
        }
    }
}

pub(crate) use imp::*;
