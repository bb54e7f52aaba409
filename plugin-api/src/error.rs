//! Typed errors across the boundary: the host decides what to do from the kind,
//! never from the wording of the message.

use abi_stable::{std_types::RString, StableAbi};

/// What went wrong, as a `u8` newtype so a host meets a kind it does not know as
/// data (treated like [`ErrorKind::OTHER`]).
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorKind(pub u8);

impl ErrorKind {
    /// Anything else; the plugin goes on.
    pub const OTHER: ErrorKind = ErrorKind(0);
    /// The settings were refused; the message names the key to fix.
    pub const SETTINGS: ErrorKind = ErrorKind(1);
    /// A record or map value the plugin could not decode (counted, not fatal).
    pub const INPUT: ErrorKind = ErrorKind(2);
    /// A panel id the plugin does not have.
    pub const NO_SUCH_PANEL: ErrorKind = ErrorKind(3);
    /// The plugin panicked (now or before): its state is not to be trusted and
    /// the host must stop it.
    pub const PANICKED: ErrorKind = ErrorKind(4);

    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::SETTINGS => "settings",
            ErrorKind::INPUT => "input",
            ErrorKind::NO_SUCH_PANEL => "no such panel",
            ErrorKind::PANICKED => "panicked",
            _ => "error",
        }
    }
}

/// An error a plugin returns: its kind and a one-line-first message.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct PluginError {
    pub kind: ErrorKind,
    pub message: RString,
}

impl PluginError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        PluginError { kind, message: message.into().into() }
    }

    /// Whether the host must stop the plugin.
    pub fn is_fatal(&self) -> bool {
        self.kind == ErrorKind::PANICKED
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PluginError {}
