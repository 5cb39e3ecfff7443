//! Congestion controllers for the connections a [`KcpConfig`] configures:
//! a configuration is shared and cloned, each connection needs its own
//! controller state, so the configuration holds a factory.
//!
//! [`KcpConfig`]: super::KcpConfig

use std::fmt;
use std::sync::Arc;

use crate::engine::CongestionControl;

/// Makes one [`CongestionControl`] per connection (see
/// [`KcpConfig::congestion_control`](super::KcpConfig::congestion_control)).
/// Without one, connections use the engine's built-in algorithm
/// ([`BuiltIn`](crate::engine::BuiltIn)'s behaviour).
#[derive(Clone)]
pub struct ControllerFactory(Arc<dyn Fn() -> Box<dyn CongestionControl> + Send + Sync>);

impl ControllerFactory {
    /// A factory calling `make` for every new connection.
    pub fn new<C: CongestionControl + 'static>(
        make: impl Fn() -> C + Send + Sync + 'static,
    ) -> Self {
        ControllerFactory(Arc::new(move || Box::new(make())))
    }

    /// A controller for a new connection.
    pub fn make(&self) -> Box<dyn CongestionControl> {
        (self.0)()
    }
}

impl fmt::Debug for ControllerFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ControllerFactory(..)")
    }
}

/// Two configurations are equal only when they share the same factory.
impl PartialEq for ControllerFactory {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
