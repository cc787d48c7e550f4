// SPDX-License-Identifier: GPL-2.0

//! The Rust Landlock policy engine (`linux/security/landlock_rust/engine.rs`), built on the
//! host against a small stand-in for the kernel's fallible `KVec`, so that its logic is tested
//! with `cargo test` as well as with KUnit in the kernel.

#![forbid(unsafe_code)]

/// The subset of `kernel::alloc` the engine uses.
pub mod shim {
    use std::ops::{Deref, DerefMut};

    /// Allocation failure.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct AllocError;

    /// Allocation flags (ignored on the host).
    #[derive(Debug, Clone, Copy)]
    pub struct Flags;

    /// `GFP_KERNEL_ACCOUNT`.
    pub const GFP: Flags = Flags;

    /// A vector whose growth can fail, like `kernel::alloc::KVec`.
    #[derive(Debug)]
    pub struct KVec<T>(Vec<T>);

    impl<T> KVec<T> {
        pub const fn new() -> Self {
            Self(Vec::new())
        }
        pub fn with_capacity(n: usize, _: Flags) -> Result<Self, AllocError> {
            let mut v = Vec::new();
            v.try_reserve(n).map_err(|_| AllocError)?;
            Ok(Self(v))
        }
        pub fn push(&mut self, x: T, _: Flags) -> Result<(), AllocError> {
            self.0.try_reserve(1).map_err(|_| AllocError)?;
            self.0.push(x);
            Ok(())
        }
    }

    impl<T> Deref for KVec<T> {
        type Target = [T];
        fn deref(&self) -> &[T] {
            &self.0
        }
    }

    impl<T> DerefMut for KVec<T> {
        fn deref_mut(&mut self) -> &mut [T] {
            &mut self.0
        }
    }
}

#[path = "../../../../linux/security/landlock_rust/engine.rs"]
pub mod engine;

#[cfg(test)]
#[path = "../../../../linux/security/landlock_rust/engine_tests.rs"]
mod engine_tests;

#[cfg(test)]
mod tests {
    use super::engine_tests as t;

    #[test]
    fn attr_validation() {
        assert_eq!(t::attr_validation(), Ok(()));
    }
    #[test]
    fn create_prelude() {
        assert_eq!(t::create_prelude(), Ok(()));
    }
    #[test]
    fn rules() {
        assert_eq!(t::rules(), Ok(()));
    }
    #[test]
    fn fs_walk() {
        assert_eq!(t::fs_walk(), Ok(()));
    }
    #[test]
    fn rule_grants() {
        assert_eq!(t::rule_grants(), Ok(()));
    }
    #[test]
    fn layered_model() {
        assert_eq!(t::layered_model(), Ok(()));
    }
    #[test]
    fn layer_limit() {
        assert_eq!(t::layer_limit(), Ok(()));
    }
    #[test]
    fn net() {
        assert_eq!(t::net(), Ok(()));
    }
    #[test]
    fn sockaddr() {
        assert_eq!(t::sockaddr(), Ok(()));
    }
    #[test]
    fn access_of_operations() {
        assert_eq!(t::access_of_operations(), Ok(()));
    }
    #[test]
    fn reparent() {
        assert_eq!(t::reparent(), Ok(()));
    }
    #[test]
    fn scopes() {
        assert_eq!(t::scopes(), Ok(()));
    }
    #[test]
    fn restrict_flags() {
        assert_eq!(t::restrict_flags(), Ok(()));
    }
    #[test]
    fn log_policy() {
        assert_eq!(t::log_policy(), Ok(()));
    }
    #[test]
    fn denied_layers() {
        assert_eq!(t::denied_layers(), Ok(()));
    }
    #[test]
    fn blockers_and_ids() {
        assert_eq!(t::blockers_and_ids(), Ok(()));
    }
    #[test]
    fn quiet_rules() {
        assert_eq!(t::quiet_rules(), Ok(()));
    }
    #[test]
    fn resolve_unix() {
        assert_eq!(t::resolve_unix(), Ok(()));
    }
    #[test]
    fn udp() {
        assert_eq!(t::udp(), Ok(()));
    }
}
